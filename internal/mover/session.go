package mover

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

type sessionState int

const (
	stateActive sessionState = iota
	stateCommitting
	stateCommitted
)

// indexKey names one uploaded index.
type indexKey struct {
	point string
	disk  int
}

// maxSessionIndexes bounds the indexes one session may upload.
const maxSessionIndexes = 4 * MaxDisks

// session is one backup session on the server. It holds the repository's
// shared lock from start until commit, abort or expiry.
type session struct {
	id        string
	requestID string
	peer      string // the owner: its client certificate's fingerprint (peerID)
	shared    bool   // other peers may use (not commit or abort) it
	rp        *served
	started   time.Time
	points    []string // keys of Server.owners this session claimed (guarded by Server.mu)

	mu        sync.Mutex
	state     sessionState
	ended     bool
	lock      *repo.Lock // nil once released
	indexes   map[indexKey]repo.ChunkID
	committed string // the committed point's ID
	inflight  int
	last      time.Time
	timer     *time.Timer
}

// access is what a session endpoint needs of the requesting peer.
type access int

const (
	// accessUse: the upload endpoints (has, chunks, indexes, keepalive),
	// open to the owner and, on a shared session, to any peer that names it.
	accessUse access = iota
	// accessOwner: commit and abort, for the owner only.
	accessOwner
)

// acquire finds a live session of rp that peer may use as need says and
// marks a request in flight; done ends it. An unknown or ended session is
// 404, and so is a foreign private one (not told apart from an unknown
// one). A foreign peer on a shared session may use it but not commit or
// abort it (403 not_session_owner).
func (s *Server) acquire(rp *served, sid, peer string, need access) (*session, func(), error) {
	s.mu.Lock()
	sess := s.sessions[sid]
	s.mu.Unlock()
	notFound := newAPIError(http.StatusNotFound, codeSessionNotFound, "session %.32q not found", sid)
	if sess == nil || sess.rp != rp || (sess.peer != peer && !sess.shared) {
		return nil, nil, notFound
	}
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.ended {
		return nil, nil, notFound
	}
	if sess.peer != peer && need == accessOwner {
		return nil, nil, newAPIError(http.StatusForbidden, codeNotOwner,
			"session %s is shared; only the client that started it may commit or end it", sid[:8])
	}
	sess.inflight++
	sess.last = s.o.Clock.Now()
	return sess, func() {
		sess.mu.Lock()
		sess.inflight--
		sess.last = s.o.Clock.Now()
		sess.mu.Unlock()
	}, nil
}

// startSession: POST sessions. A repeated request ID (a retry whose reply
// was lost) returns the session it started.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, rp *served) error {
	b, err := readBody(w, r, maxSessionBody)
	if err != nil {
		return err
	}
	var req sessionRequest
	if err := decodeJSON(b, &req); err != nil {
		return badRequest(err)
	}
	if !hex32Pattern.MatchString(req.RequestID) || req.Kind != repo.LockShared {
		return badRequest(fmt.Errorf("session request needs a 32-hex-digit request_id and kind %q", repo.LockShared))
	}
	peer := peerID(r)
	if sess := s.replay(rp, peer, req.RequestID); sess != nil {
		writeJSON(w, http.StatusOK, s.sessionReply(sess))
		return nil
	}
	if err := s.reserve(peer, accessOf(r).Sessions); err != nil {
		return err
	}
	lock, err := rp.r.Lock(r.Context(), repo.LockShared)
	if err != nil {
		return err
	}
	sess := &session{id: randomID(), requestID: req.RequestID, peer: peer, shared: req.Shared, rp: rp, lock: lock,
		started: s.o.Clock.Now(), last: s.o.Clock.Now(), indexes: make(map[indexKey]repo.ChunkID)}
	if old := s.insert(sess); old != nil { // a concurrent retry won the race
		_ = lock.Release()
		writeJSON(w, http.StatusOK, s.sessionReply(old))
		return nil
	}
	s.log.Info("mover session started", "repo", rp.name, "session", sess.id[:8],
		"client_host", req.Hostname, "client_pid", req.PID, "shared", req.Shared)
	writeJSON(w, http.StatusCreated, s.sessionReply(sess))
	return nil
}

func (s *Server) sessionReply(sess *session) sessionResponse {
	return sessionResponse{Session: sess.id, TTLSeconds: int(s.o.SessionTTL / time.Second), Shared: sess.shared}
}

// replay finds the session a request ID already started.
func (s *Server) replay(rp *served, peer, requestID string) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		if sess.rp == rp && sess.peer == peer && sess.requestID == requestID {
			return sess
		}
	}
	return nil
}

// reserve checks that peer, allowed quota sessions, may start another.
func (s *Server) reserve(peer string, quota int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return newAPIError(http.StatusServiceUnavailable, codeBusy, "server shutting down")
	}
	if quota <= 0 {
		return newAPIError(http.StatusForbidden, codeForbidden, "this client may not start sessions")
	}
	if n := s.sessionsOf(peer); n >= quota {
		return newAPIError(http.StatusTooManyRequests, codeTooManySessions,
			"this client holds %d sessions, the most it may hold at once: end one or wait for an idle one to expire", n)
	}
	if len(s.sessions) >= s.o.MaxSessions {
		return newAPIError(http.StatusServiceUnavailable, codeBusy, "too many sessions (%d)", len(s.sessions))
	}
	return nil
}

// insert registers a session and arms its expiry timer; if a session with
// the same request ID appeared meanwhile it returns that one instead.
func (s *Server) insert(sess *session) *session {
	s.mu.Lock()
	for _, o := range s.sessions {
		if o.rp == sess.rp && o.peer == sess.peer && o.requestID == sess.requestID {
			s.mu.Unlock()
			return o
		}
	}
	s.sessions[sess.id] = sess
	s.started.Add(1)
	s.mu.Unlock()
	sess.mu.Lock()
	sess.timer = time.AfterFunc(s.o.SessionTTL, func() { s.expire(sess) })
	sess.mu.Unlock()
	return nil
}

// expire ends an idle session; a busy or recently used one is re-armed.
func (s *Server) expire(sess *session) {
	sess.mu.Lock()
	if sess.ended {
		sess.mu.Unlock()
		return
	}
	idle := s.o.Clock.Since(sess.last)
	if sess.inflight > 0 || idle < s.o.SessionTTL {
		sess.timer.Reset(max(s.o.SessionTTL-idle, s.o.SessionTTL/4))
		sess.mu.Unlock()
		return
	}
	sess.mu.Unlock()
	s.end(sess, "expired")
}

// end removes a session and releases its lock (if not released at commit).
func (s *Server) end(sess *session, why string) {
	sess.mu.Lock()
	if sess.ended {
		sess.mu.Unlock()
		return
	}
	sess.ended = true
	lock := sess.lock
	sess.lock = nil
	if sess.timer != nil {
		sess.timer.Stop()
	}
	sess.mu.Unlock()
	s.mu.Lock()
	delete(s.sessions, sess.id)
	for _, key := range sess.points {
		if s.owners[key] == sess {
			delete(s.owners, key)
		}
	}
	s.mu.Unlock()
	if lock != nil {
		if err := lock.Release(); err != nil {
			s.log.Warn("mover: release lock", "repo", sess.rp.name, "err", err)
		}
	}
	s.log.Info("mover session "+why, "repo", sess.rp.name, "session", sess.id[:8],
		"duration", s.o.Clock.Since(sess.started).Round(time.Millisecond))
}

// abort: DELETE sessions/{sid}. Ends the session (after a commit, this
// only forgets it); uncommitted uploads stay for reuse or GC.
func (s *Server) abort(w http.ResponseWriter, r *http.Request, sess *session) error {
	s.end(sess, "ended")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// keepalive: POST sessions/{sid}/keepalive. acquire already refreshed it.
func (s *Server) keepalive(w http.ResponseWriter, r *http.Request, sess *session) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// requireActive fails when the session no longer takes uploads.
func (sess *session) requireActive() error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.state != stateActive {
		return newAPIError(http.StatusConflict, codeConflict, "session already committed")
	}
	return nil
}

// Close ends every session and releases their locks. The repositories
// stay open (the caller closes them).
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	all := make([]*session, 0, len(s.sessions))
	for _, sess := range s.sessions {
		all = append(all, sess)
	}
	s.mu.Unlock()
	for _, sess := range all {
		s.end(sess, "closed")
	}
	return nil
}

// detached is the context for work that must not stop halfway when the
// client disconnects (commit).
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
}
