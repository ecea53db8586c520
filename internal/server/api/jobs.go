package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// jobRequest is the body of POST /api/v1/jobs and PUT /api/v1/jobs/{name}.
type jobRequest struct {
	Name       string          `json:"name"`
	Kind       string          `json:"kind"`
	Definition json.RawMessage `json:"definition"`
	Schedule   string          `json:"schedule"`
	Enabled    *bool           `json:"enabled"`  // default true
	Password   string          `json:"password"` // repository password, stored as a secret
}

// jobFromRequest validates req and seals its password and guest SSH key,
// returning the names of the secrets it created (to drop if storing the job
// fails); keep is the stored definition being replaced (nil on create).
func (s *Server) jobFromRequest(r *http.Request, req jobRequest, keep json.RawMessage) (configdb.Job, []string, error) {
	if err := checkName("job", req.Name); err != nil {
		return configdb.Job{}, nil, err
	}
	if len(req.Definition) == 0 || string(req.Definition) == "null" {
		return configdb.Job{}, nil, badRequest("job %q has no definition", req.Name)
	}
	if err := checkJobVMs(req.Definition); err != nil {
		return configdb.Job{}, nil, err
	}
	def, pw, err := s.sealPassword(r.Context(), req.Definition, req.Password, "job", req.Name, keep)
	if err != nil {
		return configdb.Job{}, nil, err
	}
	def, key, err := s.sealField(r.Context(), def, sshKeyField, "", "job", req.Name, keep)
	if err != nil {
		s.dropSecret(r.Context(), pw)
		return configdb.Job{}, nil, err
	}
	j := configdb.Job{Name: req.Name, Kind: req.Kind, Definition: def, Schedule: req.Schedule, Enabled: true}
	if req.Enabled != nil {
		j.Enabled = *req.Enabled
	}
	return j, []string{pw, key}, nil
}

// dropSecrets deletes secrets the API created.
func (s *Server) dropSecrets(ctx context.Context, names []string) {
	for _, n := range names {
		s.dropSecret(ctx, n)
	}
}

// dropReplaced deletes the secrets old refers to that j no longer does.
func (s *Server) dropReplaced(ctx context.Context, old, def json.RawMessage) {
	for _, f := range []secretField{passwordField, sshKeyField} {
		if ref := fieldRef(old, f); ref != fieldRef(def, f) {
			s.dropSecret(ctx, ref)
		}
	}
}

func (s *Server) createJob(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req jobRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	j, secrets, err := s.jobFromRequest(r, req, nil)
	if err != nil {
		return err
	}
	if j, err = s.store.CreateJob(r.Context(), j); err != nil {
		s.dropSecrets(r.Context(), secrets)
		return err
	}
	if err := s.audit(r.Context(), p, "job.create", j.Name, jobDetails(j)); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, viewJob(j))
	return nil
}

// jobDetails is what the audit log says about a job: never its definition.
func jobDetails(j configdb.Job) map[string]any {
	d := map[string]any{"kind": j.Kind, "schedule": j.Schedule, "enabled": j.Enabled}
	if ref := secretRef(j.Definition); ref != "" {
		d["password_ref"] = ref
	}
	if ref := fieldRef(j.Definition, sshKeyField); ref != "" {
		d["guest_ssh_key_ref"] = ref
	}
	return d
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	jobs, err := s.store.ListJobs(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(jobs, viewJob))
	return nil
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	j, err := s.store.GetJob(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewJob(j))
	return nil
}

// updateJob replaces a job; the name in the body, if any, renames it.
func (s *Server) updateJob(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req jobRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	old, err := s.store.GetJob(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	if req.Name == "" {
		req.Name = old.Name
	}
	if req.Enabled == nil {
		req.Enabled = &old.Enabled
	}
	j, secrets, err := s.jobFromRequest(r, req, old.Definition)
	if err != nil {
		return err
	}
	j.ID = old.ID
	if j, err = s.store.UpdateJob(r.Context(), j); err != nil {
		s.dropSecrets(r.Context(), secrets)
		return err
	}
	s.dropReplaced(r.Context(), old.Definition, j.Definition)
	details := jobDetails(j)
	if j.Name != old.Name {
		details["renamed_from"] = old.Name
	}
	if err := s.audit(r.Context(), p, "job.update", j.Name, details); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewJob(j))
	return nil
}

func (s *Server) deleteJob(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	name := r.PathValue("name")
	j, err := s.store.GetJob(r.Context(), name)
	if err != nil {
		return err
	}
	if err := s.store.DeleteJob(r.Context(), name); err != nil {
		return err
	}
	s.dropReplaced(r.Context(), j.Definition, nil)
	if err := s.audit(r.Context(), p, "job.delete", name, nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) enableJob(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	return s.setJobEnabled(w, r, p, true)
}

func (s *Server) disableJob(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	return s.setJobEnabled(w, r, p, false)
}

func (s *Server) setJobEnabled(w http.ResponseWriter, r *http.Request, p configdb.Principal, on bool) error {
	j, err := s.store.GetJob(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	j.Enabled = on
	if j, err = s.store.UpdateJob(r.Context(), j); err != nil {
		return err
	}
	action := "job.disable"
	if on {
		action = "job.enable"
	}
	if err := s.audit(r.Context(), p, action, j.Name, nil); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewJob(j))
	return nil
}
