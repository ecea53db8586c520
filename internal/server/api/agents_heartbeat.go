package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// agentIdentity authenticates an agent by its client certificate: it must
// have been verified against the CA during the handshake, carry an agent
// identity, and be the certificate the server issued that agent last (an
// agent deleted or re-joined since is refused).
func (s *Server) agentIdentity(r *http.Request) (configdb.Agent, error) {
	role, name, err := pki.PeerIdentity(r.TLS)
	if err != nil {
		return configdb.Agent{}, errUnauthenticated("agent client certificate required")
	}
	if role != pki.RoleProxy && role != pki.RoleRepository {
		return configdb.Agent{}, &apitypes.Error{Status: http.StatusForbidden, Code: "forbidden",
			Message: "certificate of a " + role + ", not an agent"}
	}
	a, err := s.store.GetAgent(r.Context(), role, name)
	if errors.Is(err, configdb.ErrNotFound) {
		return configdb.Agent{}, errUnauthenticated("unknown agent " + role + " " + name)
	}
	if err != nil {
		return configdb.Agent{}, err
	}
	if a.CertFingerprint != pki.Fingerprint(r.TLS.VerifiedChains[0][0]) {
		return configdb.Agent{}, errUnauthenticated("agent certificate revoked or superseded")
	}
	return a, nil
}

// maxCapabilities bounds an agent's announced capabilities.
const maxCapabilities = 16 << 10

// heartbeat records that the calling agent is alive; it may announce a new
// address (an agent listening on a new port after a restart) or slot count.
func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	a, err := s.agentIdentity(r)
	if err != nil {
		return err
	}
	var req apitypes.HeartbeatRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.updateAnnounced(r, a, req); err != nil {
		return err
	}
	if err := s.store.Heartbeat(r.Context(), a.Role, a.Name); err != nil {
		return err
	}
	s.sampleCapacity(r, a, req)
	reply := apitypes.HeartbeatReply{Role: a.Role, Name: a.Name, Time: s.now().UTC()}
	if a.Role == configdb.AgentRepository {
		if reply.Peers, err = s.repositoryPeers(r); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, reply)
	return nil
}

func (s *Server) repositoryPeers(r *http.Request) ([]apitypes.Peer, error) {
	proxies, err := s.store.ListAgents(r.Context(), configdb.AgentProxy)
	if err != nil {
		return nil, err
	}
	peers := make([]apitypes.Peer, 0, len(proxies)+1)
	if s.selfFP != "" {
		peers = append(peers, apitypes.Peer{Role: pki.RoleServer, Fingerprint: s.selfFP})
	}
	for _, p := range proxies {
		if p.CertFingerprint != "" {
			peers = append(peers, apitypes.Peer{Role: p.Role, Name: p.Name, Fingerprint: p.CertFingerprint})
		}
	}
	return peers, nil
}

func (s *Server) updateAnnounced(r *http.Request, a configdb.Agent, req apitypes.HeartbeatRequest) error {
	if req.Slots < 0 || req.Slots > maxSlots {
		return badRequest("slots %d: want 0 to %d", req.Slots, maxSlots)
	}
	if req.Address != "" {
		if _, _, err := net.SplitHostPort(req.Address); err != nil {
			return badRequest("address %q: want host:port", req.Address)
		}
	}
	changed := false
	if len(req.Capabilities) > 0 {
		var obj map[string]json.RawMessage
		if len(req.Capabilities) > maxCapabilities || json.Unmarshal(req.Capabilities, &obj) != nil || obj == nil {
			return badRequest("capabilities: want a JSON object of at most %d bytes", maxCapabilities)
		}
		var buf bytes.Buffer
		_ = json.Compact(&buf, req.Capabilities)
		if !bytes.Equal(buf.Bytes(), a.Capabilities) {
			a.Capabilities, changed = buf.Bytes(), true
		}
	}
	if req.Address != "" && req.Address != a.Address {
		a.Address, changed = req.Address, true
	}
	if req.Slots > 0 && req.Slots != a.Slots {
		a.Slots, changed = req.Slots, true
	}
	if !changed {
		return nil
	}
	_, err := s.store.UpsertAgent(r.Context(), a)
	return err
}
