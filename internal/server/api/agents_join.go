package api

import (
	"errors"
	"net"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// maxSlots bounds the task slots an agent may announce.
const maxSlots = 4096

func errUnavailable(msg string) error {
	return &apitypes.Error{Status: http.StatusServiceUnavailable, Code: "unavailable", Message: msg}
}

func validateJoin(req *apitypes.JoinRequest) (hosts []string, err error) {
	if req.Role != configdb.AgentProxy && req.Role != configdb.AgentRepository {
		return nil, badRequest("agent role %q: want proxy or repository", req.Role)
	}
	if !pki.ValidName(req.Name) {
		return nil, badRequest("agent name %q: want 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", req.Name)
	}
	if req.Slots < 0 || req.Slots > maxSlots {
		return nil, badRequest("slots %d: want 0 to %d", req.Slots, maxSlots)
	}
	if req.CSR == "" {
		return nil, badRequest("csr: a PEM certificate request is required")
	}
	if req.Address == "" {
		return nil, nil
	}
	host, port, err := net.SplitHostPort(req.Address)
	if err != nil || port == "" {
		return nil, badRequest("address %q: want host:port", req.Address)
	}
	if host != "" {
		hosts = append(hosts, host)
	}
	return hosts, nil
}

// joinAgent enrols an agent: it consumes the join token and returns a
// certificate for the CSR. The certificate is signed before the token is
// consumed, so a malformed request does not burn the token; a token of
// another role is consumed and refused.
func (s *Server) joinAgent(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	if s.ca == nil {
		return errUnavailable("this server has no CA: agents cannot join")
	}
	var req apitypes.JoinRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Token == "" {
		return errUnauthenticated("missing join token")
	}
	hosts, err := validateJoin(&req)
	if err != nil {
		return err
	}
	iss, err := s.ca.IssueAgent(req.Role, req.Name, []byte(req.CSR), hosts...)
	if err != nil {
		return badRequest("%v", err)
	}
	role, err := s.store.ConsumeJoinToken(r.Context(), req.Token, req.Name)
	if errors.Is(err, configdb.ErrUnauthorized) {
		return errUnauthenticated("invalid, expired or already used join token")
	}
	if err != nil {
		return err
	}
	if role != req.Role {
		return &apitypes.Error{Status: http.StatusForbidden, Code: "forbidden",
			Message: "the join token is for a " + role + ", not a " + req.Role}
	}
	return s.enrol(w, r, req, iss)
}

// enrol records the joined agent, audits it and answers with its certificate.
func (s *Server) enrol(w http.ResponseWriter, r *http.Request, req apitypes.JoinRequest, iss *pki.Issued) error {
	_, err := s.store.UpsertAgent(r.Context(), configdb.Agent{Role: req.Role, Name: req.Name,
		Address: req.Address, Slots: req.Slots, CertFingerprint: iss.Fingerprint})
	if err != nil {
		return err
	}
	actor := configdb.Principal{Name: req.Role + ":" + req.Name}
	details := map[string]any{"address": req.Address, "slots": req.Slots, "fingerprint": iss.Fingerprint}
	if err := s.audit(r.Context(), actor, "agent.join", req.Role+"/"+req.Name, details); err != nil {
		return err
	}
	s.log.Info("agent joined", "role", req.Role, "name", req.Name, "address", req.Address)
	writeJSON(w, http.StatusCreated, apitypes.JoinResponse{Certificate: string(iss.CertPEM), CA: string(iss.CAPEM),
		Fingerprint: iss.Fingerprint})
	return nil
}
