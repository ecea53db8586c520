package api

import (
	"encoding/json"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// sourceRequest is the body of POST /api/v1/sources.
type sourceRequest struct {
	Name       string          `json:"name"`
	Kind       string          `json:"kind"`
	Definition json.RawMessage `json:"definition"`
	Password   string          `json:"password"` // credentials, stored as a secret
}

func (s *Server) createSource(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req sourceRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkName("source", req.Name); err != nil {
		return err
	}
	if req.Kind == "" {
		return badRequest("source %q has no kind", req.Name)
	}
	def, secret, err := s.sealPassword(r.Context(), req.Definition, req.Password, "source", req.Name, nil)
	if err != nil {
		return err
	}
	src, err := s.store.CreateSource(r.Context(), configdb.Source{Name: req.Name, Kind: req.Kind, Definition: def})
	if err != nil {
		s.dropSecret(r.Context(), secret)
		return err
	}
	if err := s.audit(r.Context(), p, "source.create", src.Name, map[string]any{"kind": src.Kind}); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, viewSource(src))
	return nil
}

func (s *Server) listSources(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	srcs, err := s.store.ListSources(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(srcs, viewSource))
	return nil
}

func (s *Server) getSource(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	src, err := s.store.GetSource(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSource(src))
	return nil
}

func (s *Server) deleteSource(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	name := r.PathValue("name")
	src, err := s.store.GetSource(r.Context(), name)
	if err != nil {
		return err
	}
	if err := s.store.DeleteSource(r.Context(), name); err != nil {
		return err
	}
	s.dropSecret(r.Context(), secretRef(src.Definition))
	if err := s.audit(r.Context(), p, "source.delete", name, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
