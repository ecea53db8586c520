package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// runJob queues a session of the job and hands it to the Runner, if any.
// A job runs one session at a time: a run while one is queued or running
// is refused (409 already_running, naming the session), as a scheduled
// firing is skipped then.
func (s *Server) runJob(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	ctx := r.Context()
	j, err := s.store.GetJob(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	if err := s.checkNotRunning(ctx, j); err != nil {
		return err
	}
	se, err := s.queueRun(ctx, p, j, "job.run", j.Name, map[string]any{})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, viewSession(se))
	return nil
}

// queueRun queues a session of j, audits action on target (details gain
// the session) and hands the session to the Runner, if any.
func (s *Server) queueRun(ctx context.Context, p configdb.Principal, j configdb.Job, action, target string,
	details map[string]any) (configdb.Session, error) {
	se, err := s.store.CreateSession(ctx, j.Name, j.Kind)
	if err != nil {
		return se, err
	}
	if se, err = s.store.UpdateSession(ctx, se.ID, configdb.StateQueued, nil); err != nil {
		return se, err
	}
	details["session"] = se.ID
	if err := s.audit(ctx, p, action, target, details); err != nil {
		return se, err
	}
	if s.runner != nil {
		if err := s.runner.Start(ctx, se, j); err != nil {
			s.failSession(context.WithoutCancel(ctx), se.ID, err)
			return se, err
		}
	}
	return se, nil
}

// checkNotRunning refuses to start a job that has a run (a session of its
// kind: restores and mounts of its points do not count) queued or running.
func (s *Server) checkNotRunning(ctx context.Context, j configdb.Job) error {
	job := j.Name
	for _, st := range []configdb.State{configdb.StateRunning, configdb.StateQueued} {
		ss, err := s.store.ListSessions(ctx, configdb.SessionFilter{JobName: job, Kind: j.Kind, State: st, Limit: 1})
		if err != nil {
			return err
		}
		if len(ss) > 0 {
			return newError(http.StatusConflict, "already_running",
				fmt.Sprintf("job %s is already running (session %d); wait for it or cancel it (holdfast session cancel %d)",
					job, ss[0].ID, ss[0].ID))
		}
	}
	return nil
}

// failSession marks a session the Runner could not start as failed.
func (s *Server) failSession(ctx context.Context, id int64, cause error) {
	res, _ := json.Marshal(map[string]string{"error": "runner did not start the session: " + cause.Error()})
	if _, err := s.store.UpdateSession(ctx, id, configdb.StateFailed, res); err != nil {
		s.log.Error("mark session failed", "session", id, "err", err)
	}
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	n, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	st := configdb.State(q.Get("state"))
	if st != "" && !st.Valid() {
		return badRequest("unknown session state %q", st)
	}
	before, err := queryIDCursor(r)
	if err != nil {
		return err
	}
	since, err := querySince(r)
	if err != nil {
		return err
	}
	f := configdb.SessionFilter{JobName: q.Get("job"), Kind: q.Get("kind"), State: st, Limit: n, Before: before, Since: since}
	sessions, err := s.store.ListSessions(r.Context(), f)
	if err != nil {
		return err
	}
	nextCursor(w, len(sessions), pageSize(n), func() string { return strconv.FormatInt(sessions[len(sessions)-1].ID, 10) })
	writeJSON(w, http.StatusOK, list(sessions, viewSession))
	return nil
}

func (s *Server) getSession(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return badRequest("session id %q: want a positive integer", r.PathValue("id"))
	}
	se, err := s.store.GetSession(r.Context(), id)
	if err != nil {
		return err
	}
	tasks, err := s.store.ListTasks(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSessionTasks(se, tasks, s.now()))
	return nil
}

// sessionWaiting says why a session that is not over has no task running:
// the reason the orchestrator recorded on its first waiting task ("waiting:
// no proxy can reach vm1 (…)", "waiting: repository repo1 is busy (2/2
// slots)"); "" while a task runs or none waits.
func sessionWaiting(se configdb.Session, tasks []configdb.Task) string {
	if se.State.Terminal() {
		return ""
	}
	why := ""
	for _, t := range tasks {
		switch {
		case t.State == configdb.StateRunning:
			return ""
		case t.State == configdb.StateQueued && why == "" && strings.HasPrefix(t.Error, "waiting: "):
			why = t.Error
		}
	}
	return why
}

// checkMountIdle refuses (409, "in_use") to stop an Instant VM Recovery
// session whose mount server last reported clients of its exports.
func (s *Server) checkMountIdle(ctx context.Context, id int64) error {
	se, err := s.store.GetSession(ctx, id)
	if err != nil || se.Kind != "instant-recovery" || se.State != configdb.StateRunning {
		return err
	}
	var res struct {
		Serving struct {
			InUse string `json:"in_use"`
		} `json:"serving"`
	}
	if json.Unmarshal(se.Result, &res) != nil || res.Serving.InUse == "" {
		return nil
	}
	return newError(http.StatusConflict, "in_use", fmt.Sprintf("session %d is in use by %s; stopping it would cut them off "+
		"(wait until they disconnect, or force it with --force, ?force=true)", id, res.Serving.InUse))
}

// cancelSession stops a running session (queued tasks leave the queue,
// running attempts are dropped); 409 if it is not running, or if it is an
// Instant VM Recovery session whose exports have clients (unless
// ?force=true).
func (s *Server) cancelSession(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return badRequest("session id %q: want a positive integer", r.PathValue("id"))
	}
	if s.tasks == nil {
		return newError(http.StatusServiceUnavailable, "unavailable", "this server runs no tasks")
	}
	if r.URL.Query().Get("force") != "true" {
		if err := s.checkMountIdle(r.Context(), id); err != nil {
			return err
		}
	}
	se, err := s.tasks.CancelSession(r.Context(), id)
	if err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "session.cancel", strconv.FormatInt(id, 10), nil); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewSession(se))
	return nil
}
