package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/libvirtsrc"
	"github.com/holdfast-backup/holdfast/internal/server/vspheresrc"
)

// sealSourcePassword seals a source's password — the request's, or a
// "password" key of its definition, a JSON object of the source kind's
// settings — and returns the definition to store, with "password_secret"
// naming the new secret, and the secret's name ("" if none).
func (s *Server) sealSourcePassword(ctx context.Context, req apitypes.SourceRequest) (json.RawMessage, string, error) {
	obj := map[string]json.RawMessage{}
	if len(req.Definition) > 0 && string(req.Definition) != "null" {
		if err := json.Unmarshal(req.Definition, &obj); err != nil || obj == nil {
			return nil, "", badRequest("definition must be a JSON object")
		}
	}
	var inline, ref string
	for key, dst := range map[string]*string{"password": &inline, "password_secret": &ref} {
		if raw, ok := obj[key]; ok {
			if json.Unmarshal(raw, dst) != nil || *dst == "" {
				return nil, "", badRequest("definition.%s must be a non-empty string", key)
			}
			delete(obj, key)
		}
	}
	slot := secretSlot{inline: &inline, ref: &ref, label: "password", refName: "password_secret"}
	created, err := s.seal(ctx, slot, req.Password, "source", req.Name, "")
	if err != nil {
		return nil, "", err
	}
	if ref != "" {
		obj["password_secret"], _ = json.Marshal(ref)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		s.dropSecret(ctx, created)
		return nil, "", err
	}
	return out, created, nil
}

func (s *Server) createSource(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req apitypes.SourceRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := checkName("source", req.Name); err != nil {
		return err
	}
	if req.Kind == "" {
		return badRequest("source %q has no kind", req.Name)
	}
	var warnings []string
	var def json.RawMessage
	var secret string
	var err error
	switch req.Kind {
	case vspheresrc.Kind:
		def, warnings, err = s.checkVSphereSource(req)
	case libvirtsrc.Kind:
		def, warnings, err = s.checkLibvirtSource(r.Context(), req)
	default:
		def, secret, err = s.sealSourcePassword(r.Context(), req)
	}
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
	view := viewSource(src)
	view.Warnings = warnings
	writeJSON(w, http.StatusCreated, view)
	return nil
}

// checkVSphereSource checks a vSphere source (vspheresrc): its definition
// names the password file on this host, never a password. The file must
// exist; one others may read gives a warning, logged and returned.
func (s *Server) checkVSphereSource(req apitypes.SourceRequest) (json.RawMessage, []string, error) {
	if req.Password != "" {
		return nil, nil, badRequest("a vSphere source takes no password: give password_file, a file on the server host")
	}
	d, err := vspheresrc.Parse(req.Definition)
	if err != nil {
		return nil, nil, badRequest("source %q: %v", req.Name, err)
	}
	warnings, err := d.CheckPasswordFile()
	if err != nil {
		return nil, nil, badRequest("source %q: %v", req.Name, err)
	}
	for _, w := range warnings {
		s.log.Warn("vSphere source", "source", req.Name, "warning", w)
	}
	def, err := json.Marshal(d)
	return def, warnings, err
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
