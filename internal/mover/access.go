package mover

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
)

// Access is what ServerOptions.Authorize grants the client of a request.
// Every endpoint needs a grant; the fields below add to it.
type Access struct {
	// Sessions is how many sessions the client may have started and hold
	// open at once (429 too_many_sessions beyond); 0: it may not start
	// any. Using a shared session another client started needs none.
	Sessions int
	// ListPoints allows GET points: every manifest in clear (VM names,
	// disk locations, host names). The backup server needs it; a proxy
	// gets what it needs of a point in its task.
	ListPoints bool
	// RecordScans allows PUT points/{point}/scans/{engine}: adding a
	// malware scan record (sealed with the repository key) to a point
	// that has none of that engine.
	RecordScans bool
}

// DefaultSessionsPerClient is the session bound of a client when
// ServerOptions.Authorize is nil.
const DefaultSessionsPerClient = 32

type accessKey struct{}

// authorize asks the Authorize hook what the request's client may do on
// repository name and keeps the answer in the request's context.
func (s *Server) authorize(r *http.Request, name string) (*http.Request, error) {
	acc := Access{Sessions: DefaultSessionsPerClient, ListPoints: true, RecordScans: true}
	if s.o.Authorize != nil {
		var err error
		if acc, err = s.o.Authorize(r, name); err != nil {
			return nil, newAPIError(http.StatusForbidden, codeForbidden, "%v", err)
		}
	}
	return r.WithContext(context.WithValue(r.Context(), accessKey{}, acc)), nil
}

// accessOf returns the grant authorize stored in r.
func accessOf(r *http.Request) Access {
	acc, _ := r.Context().Value(accessKey{}).(Access)
	return acc
}

// peerID identifies the client certificate: "sha256:" and the hex SHA-256
// of the leaf, as pki.Fingerprint writes it; "" for a client without one.
// Sessions are bound to it (their owner) and counted per it.
func peerID(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	sum := sha256.Sum256(r.TLS.PeerCertificates[0].Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// EndSessions ends every session whose owner keep refuses (the
// fingerprint of its certificate, see peerID) and releases their locks,
// for example when the owner's certificate was revoked. It returns how
// many it ended.
func (s *Server) EndSessions(keep func(owner string) bool) int {
	s.mu.Lock()
	var gone []*session
	for _, sess := range s.sessions {
		if !keep(sess.peer) {
			gone = append(gone, sess)
		}
	}
	s.mu.Unlock()
	for _, sess := range gone {
		s.end(sess, "ended: its client's certificate is no longer valid")
	}
	return len(gone)
}

// sessionsOf counts the live sessions peer started (s.mu held).
func (s *Server) sessionsOf(peer string) int {
	n := 0
	for _, sess := range s.sessions {
		if sess.peer == peer {
			n++
		}
	}
	return n
}
