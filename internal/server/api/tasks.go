package api

import (
	"context"
	"net/http"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// proxyIdentity authenticates a proxy agent by its client certificate and
// checks that the server runs tasks at all.
func (s *Server) proxyIdentity(r *http.Request) (configdb.Agent, error) {
	a, err := s.agentIdentity(r)
	if err != nil {
		return a, err
	}
	if a.Role != configdb.AgentProxy {
		return a, newError(http.StatusForbidden, "forbidden", "only proxies take tasks")
	}
	if s.tasks == nil {
		return a, newError(http.StatusServiceUnavailable, "unavailable", "this server runs no tasks")
	}
	return a, nil
}

// nextTask: the proxy waits (long poll) for its next attempt; 204 when
// none came in time.
func (s *Server) nextTask(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	a, err := s.proxyIdentity(r)
	if err != nil {
		return err
	}
	var req taskproto.NextRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	wait := time.Duration(req.WaitSeconds) * time.Second
	if wait < 0 || wait > taskproto.MaxWait {
		return badRequest("wait_seconds %d: want 0 to %d", req.WaitSeconds, int(taskproto.MaxWait/time.Second))
	}
	spec, err := s.tasks.NextTask(r.Context(), a.Name, wait)
	if err != nil {
		if r.Context().Err() != nil {
			return nil // the proxy went away
		}
		return err
	}
	if spec == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, spec)
	return nil
}

func (s *Server) taskProgress(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	a, err := s.proxyIdentity(r)
	if err != nil {
		return err
	}
	var p taskproto.Progress
	if err := decode(r, &p); err != nil {
		return err
	}
	if err := s.tasks.TaskProgress(r.Context(), a.Name, p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) taskResult(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	a, err := s.proxyIdentity(r)
	if err != nil {
		return err
	}
	var res taskproto.Result
	if err := decode(r, &res); err != nil {
		return err
	}
	if err := s.tasks.TaskResult(r.Context(), a.Name, res); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listPoints(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	n, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := configdb.PointFilter{VM: q.Get("vm"), JobName: q.Get("job"), Repository: q.Get("repository"), Limit: n}
	if c := q.Get("cursor"); c != "" {
		pc, err := configdb.ParsePointCursor(c)
		if err != nil {
			return err
		}
		f.After = &pc
	}
	if f.Since, err = querySince(r); err != nil {
		return err
	}
	ps, err := s.store.ListPoints(r.Context(), f)
	if err != nil {
		return err
	}
	nextCursor(w, len(ps), pageSize(n), func() string { return ps[len(ps)-1].Cursor().String() })
	writeJSON(w, http.StatusOK, list(ps, viewPoint))
	return nil
}

func (s *Server) getPoint(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	p, err := s.store.GetPoint(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewPoint(p))
	return nil
}

// startRestore queues a restore session: one disk of a point written to a
// path on a proxy. It answers 202 when a proxy has taken the restore.
func (s *Server) startRestore(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	if s.tasks == nil {
		return newError(http.StatusServiceUnavailable, "unavailable", "this server runs no tasks")
	}
	var req taskproto.RestoreRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	// StartRestore answers once a proxy took the restore; if this request
	// ends first (the client went away), it cancels the session.
	se, err := s.tasks.StartRestore(r.Context(), req)
	if se.ID != 0 {
		if aerr := s.audit(context.WithoutCancel(r.Context()), p, "point.restore", req.Point,
			map[string]any{"session": se.ID, "disk": req.Disk, "target": req.Target, "force": req.Force,
				"state": se.State}); aerr != nil && err == nil {
			err = aerr
		}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, viewSession(se))
	return nil
}

// startMount queues an Instant VM Recovery session on a mount server (a
// proxy); its result shows the export URLs once they answer.
func (s *Server) startMount(w http.ResponseWriter, r *http.Request, p configdb.Principal) error {
	if s.tasks == nil {
		return newError(http.StatusServiceUnavailable, "unavailable", "this server runs no tasks")
	}
	var req taskproto.MountRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.NBD == "" && !req.NFS {
		return badRequest("serve the point over NBD (nbd) or NFS (nfs), or both")
	}
	creds, err := secureMount(&req, r.RemoteAddr, p.Role)
	if err != nil {
		return err
	}
	se, err := s.tasks.StartMount(r.Context(), req)
	if err != nil {
		return err
	}
	if err := s.audit(r.Context(), p, "point.instant_recovery", req.Point,
		map[string]any{"session": se.ID, "nbd": req.NBD, "nfs": req.NFS, "allow": req.Allow}); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, apitypes.Mount{Session: viewSession(se), NBDTLS: creds})
	return nil
}
