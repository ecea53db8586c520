package api

import (
	"net/http"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// createToken returns the plaintext token, this once.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req apitypes.TokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	role := configdb.Role(req.Role)
	if err := checkName("token", req.Name); err != nil {
		return err
	}
	if !role.Valid() {
		return badRequest("role %q: want administrator, backup_operator, restore_operator or viewer", req.Role)
	}
	tok, err := s.store.CreateAPIToken(r.Context(), req.Name, role)
	if err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "token.create", req.Name, map[string]any{"role": req.Role}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apitypes.NewToken{Name: req.Name, Role: req.Role, Token: tok})
	return nil
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	toks, err := s.store.ListAPITokens(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(toks, viewToken))
	return nil
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	name := r.PathValue("name")
	if err := s.store.DeleteAPIToken(r.Context(), name); err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "token.delete", name, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// createJoinToken returns a one-time agent join token, this once.
func (s *Server) createJoinToken(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req apitypes.JoinTokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Role != configdb.AgentProxy && req.Role != configdb.AgentRepository {
		return badRequest("agent role %q: want proxy or repository", req.Role)
	}
	if req.TTLSeconds < 0 || req.TTLSeconds > 30*24*3600 {
		return badRequest("ttl_seconds %d: want 0 (default) up to 30 days", req.TTLSeconds)
	}
	ttl := s.joinTTL
	if req.TTLSeconds > 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	tok, err := s.store.CreateJoinToken(r.Context(), req.Role, ttl)
	if err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "jointoken.create", req.Role, map[string]any{"ttl_seconds": int64(ttl / time.Second)}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, apitypes.JoinToken{
		Role: req.Role, Token: tok, Expires: s.now().UTC().Add(ttl).Truncate(time.Second),
	})
	return nil
}
