package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// jobFromRequest validates req (the definition, the schedule, the chains
// of "after" schedules with every other job) and seals its password and
// guest SSH key, returning the names of the secrets it created (to drop if
// storing the job fails); old is the job being replaced (nil on create).
func (s *Server) jobFromRequest(r *http.Request, req apitypes.JobRequest, old *configdb.Job) (configdb.Job, []string, error) {
	if err := checkName("job", req.Name); err != nil {
		return configdb.Job{}, nil, err
	}
	if req.Definition == nil {
		return configdb.Job{}, nil, badRequest("job %q has no definition", req.Name)
	}
	def := *req.Definition
	if err := def.ValidateKind(req.Kind); err != nil {
		return configdb.Job{}, nil, err
	}
	if err := jobdef.ValidateSchedule(req.Schedule); err != nil {
		return configdb.Job{}, nil, err
	}
	if err := s.checkNotifyTargets(r.Context(), def.Notify); err != nil {
		return configdb.Job{}, nil, err
	}
	if err := s.checkChains(r.Context(), req.Name, req.Schedule, old); err != nil {
		return configdb.Job{}, nil, err
	}
	var keep jobdef.Definition
	if old != nil {
		keep, _ = jobdef.Parse(old.Definition)
	}
	pw, err := s.seal(r.Context(), passwordSlot(&def), req.Password, "job", req.Name, keep.PasswordSecret)
	if err != nil {
		return configdb.Job{}, nil, err
	}
	key, err := s.seal(r.Context(), sshKeySlot(&def), "", "job", req.Name, keep.GuestKeySecret)
	if err != nil {
		s.dropSecret(r.Context(), pw)
		return configdb.Job{}, nil, err
	}
	created := []string{pw, key}
	if def.Copy != nil {
		var keepTo string
		if keep.Copy != nil {
			keepTo = keep.Copy.ToPasswordSecret
		}
		to, err := s.seal(r.Context(), copyPasswordSlot(&def), "", "job", req.Name, keepTo)
		if err != nil {
			s.dropSecrets(r.Context(), created)
			return configdb.Job{}, nil, err
		}
		created = append(created, to)
	}
	raw, err := json.Marshal(def)
	if err != nil {
		s.dropSecrets(r.Context(), created)
		return configdb.Job{}, nil, err
	}
	j := configdb.Job{Name: req.Name, Kind: req.Kind, Definition: raw, Schedule: req.Schedule, Enabled: true}
	if req.Enabled != nil {
		j.Enabled = *req.Enabled
	}
	return j, created, nil
}

// checkChains refuses a schedule "after JOB" that would chain the job
// named name (old, renamed or replaced: nil on create) into a cycle with
// the stored jobs.
func (s *Server) checkChains(ctx context.Context, name, schedule string, old *configdb.Job) error {
	if schedule == "" {
		return nil
	}
	jobs, err := s.store.ListJobs(ctx)
	if err != nil {
		return err
	}
	schedules := make(map[string]string, len(jobs)+1)
	for _, j := range jobs {
		if old == nil || j.Name != old.Name {
			schedules[j.Name] = j.Schedule
		}
	}
	schedules[name] = schedule
	return jobdef.CheckChains(schedules)
}

// dropSecrets deletes secrets the API created.
func (s *Server) dropSecrets(ctx context.Context, names []string) {
	for _, n := range names {
		s.dropSecret(ctx, n)
	}
}

// dropReplaced deletes the secrets the definition old refers to that def
// (nil: none) no longer does.
func (s *Server) dropReplaced(ctx context.Context, old, def json.RawMessage) {
	o, _ := jobdef.Parse(old)
	n, _ := jobdef.Parse(def)
	for _, pair := range [][2]string{{o.PasswordSecret, n.PasswordSecret}, {o.GuestKeySecret, n.GuestKeySecret},
		{copyPasswordRef(o), copyPasswordRef(n)}} {
		if pair[0] != pair[1] {
			s.dropSecret(ctx, pair[0])
		}
	}
}

// copyPasswordRef is the secret of a copy job's target password, or "".
func copyPasswordRef(d jobdef.Definition) string {
	if d.Copy == nil {
		return ""
	}
	return d.Copy.ToPasswordSecret
}

func (s *Server) createJob(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req apitypes.JobRequest
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
	def, _ := jobdef.Parse(j.Definition)
	if def.PasswordSecret != "" {
		d["password_ref"] = def.PasswordSecret
	}
	if def.GuestKeySecret != "" {
		d["guest_ssh_key_ref"] = def.GuestKeySecret
	}
	if ref := copyPasswordRef(def); ref != "" {
		d["to_password_ref"] = ref
	}
	return d
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	n, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	runs, err := s.store.ListJobRuns(r.Context(), r.URL.Query().Get("cursor"), n)
	if err != nil {
		return err
	}
	summary, err := querySummary(r)
	if err != nil {
		return err
	}
	out := make([]apitypes.Job, 0, len(runs))
	for _, jr := range runs {
		v := s.viewJobRun(jr.Job, jr.Last)
		if summary {
			v.Definition = nil // the list pages show no definition; job show has it
		}
		out = append(out, v)
	}
	if n > 0 {
		nextCursor(w, len(runs), n, func() string { return runs[len(runs)-1].Job.Name })
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// viewJobRuns is viewJob with the next scheduled run and the newest run
// (a session of the job's kind; job show).
func (s *Server) viewJobRuns(ctx context.Context, j configdb.Job) (apitypes.Job, error) {
	ss, err := s.store.ListSessions(ctx, configdb.SessionFilter{JobName: j.Name, Kind: j.Kind, Limit: 1})
	if err != nil {
		return apitypes.Job{}, err
	}
	var last *configdb.Session
	if len(ss) > 0 {
		last = &ss[0]
	}
	return s.viewJobRun(j, last), nil
}

// viewJobRun is viewJob with the next scheduled run and last, the newest
// run (nil: none).
func (s *Server) viewJobRun(j configdb.Job, last *configdb.Session) apitypes.Job {
	v := viewJob(j)
	if j.Enabled {
		v.NextRun = optTime(jobdef.NextRun(j.Schedule, s.now()))
	}
	if last != nil {
		v.LastRun = &apitypes.JobRun{Session: last.ID, State: string(last.State), Started: last.Started, Ended: optTime(last.Ended)}
	}
	return v
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	j, err := s.store.GetJob(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	v, err := s.viewJobRuns(r.Context(), j)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// updateJob replaces a job; the name in the body, if any, renames it.
func (s *Server) updateJob(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	var req apitypes.JobRequest
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
	j, secrets, err := s.jobFromRequest(r, req, &old)
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
