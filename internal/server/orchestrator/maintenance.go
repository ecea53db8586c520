package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// MaintenanceResult is a maintenance session's result document (what
// `job run --wait --json` prints for a maintenance job).
type MaintenanceResult struct {
	Status     configdb.State     `json:"status"`
	Session    int64              `json:"session"`
	Job        string             `json:"job,omitempty"`
	Kind       string             `json:"kind"`
	Repository string             `json:"repository"`
	Started    time.Time          `json:"started"`
	Ended      time.Time          `json:"ended"`
	Duration   float64            `json:"duration_seconds"`
	GC         *repo.GCResult     `json:"gc,omitempty"`
	Verify     *repo.VerifyResult `json:"verify,omitempty"`
	// ReadDataPart of ReadDataOf (1-based) is the share of the chunks
	// this run's verify read; the next run reads the next part.
	ReadDataPart int      `json:"read_data_part,omitempty"`
	ReadDataOf   int      `json:"read_data_of,omitempty"`
	Errors       []string `json:"errors,omitempty"`
	Error        string   `json:"error,omitempty"`
	VMs          []any    `json:"vms"` // none: the shape of a backup's result
}

// startMaintenance starts a session of a maintenance job: one request to
// the repository agent, which runs gc and/or verify on its own storage.
// It returns once the session runs; the result is stored when the agent
// answers.
func (or *Orchestrator) startMaintenance(ctx context.Context, se configdb.Session, j configdb.Job) error {
	rs, err := or.serverSession(ctx, se, j, jobdef.KindMaintenance)
	if err != nil {
		return err
	}
	return or.launch(ctx, rs, func(ctx context.Context) { or.runMaintenance(ctx, rs) }, "work", rs.def.Maintenance.String())
}

// serverSession is the session of a job the server runs itself
// (maintenance, copy): its definition, validated for kind, and the
// repository password.
func (or *Orchestrator) serverSession(ctx context.Context, se configdb.Session, j configdb.Job, kind string) (*runSession, error) {
	def, err := jobdef.Parse(j.Definition)
	if err == nil {
		err = def.ValidateKind(kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: job definition: %w", taskproto.ErrInvalid, err)
	}
	pw, err := or.jobPassword(ctx, j.Name, def)
	if err != nil {
		return nil, err
	}
	return &runSession{id: se.ID, job: j.Name, kind: kind, def: def, password: string(pw),
		repo: def.Repository, started: or.now()}, nil
}

// launch registers a session the server runs itself (maintenance, copy),
// marks it running and runs it in the background with a context of its
// own (cancelled by rs.stop); it returns once the session runs.
func (or *Orchestrator) launch(ctx context.Context, rs *runSession, run func(context.Context), logArgs ...any) error {
	work, stop := context.WithCancel(context.WithoutCancel(ctx))
	rs.stop = stop
	or.mu.Lock()
	if err := or.checkNotRunningLocked(rs); err != nil {
		or.mu.Unlock()
		stop()
		return err
	}
	or.sessions[rs.id] = rs
	or.mu.Unlock()
	if _, err := or.store.UpdateSession(ctx, rs.id, configdb.StateRunning, nil); err != nil {
		or.forget(rs)
		stop()
		return err
	}
	or.log.Info("session started", append([]any{"session", rs.id, "job", rs.job, "kind", rs.kind}, logArgs...)...)
	go func() {
		defer stop()
		run(work)
	}()
	return nil
}

// runMaintenance asks the agent for the work and stores the result.
func (or *Orchestrator) runMaintenance(ctx context.Context, rs *runSession) {
	m := *rs.def.Maintenance
	res := MaintenanceResult{Session: rs.id, Job: rs.job, Kind: rs.kind, Repository: rs.repo,
		Started: rs.started.UTC(), VMs: []any{}}
	req := mover.MaintainRequest{GC: m.GC, GraceSeconds: int64(m.GCGrace()), Verify: m.Verify}
	if of := m.ReadDataParts(); of > 0 {
		req.ReadData, req.ReadDataOf = true, of
		req.ReadDataPart = or.nextReadDataPart(ctx, rs, of)
		res.ReadDataPart, res.ReadDataOf = req.ReadDataPart+1, of
	}
	err := or.maintain(ctx, rs, req, &res)
	if err != nil {
		res.Error = err.Error()
	}
	if res.Verify == nil || res.Verify.Subset == "" {
		res.ReadDataPart, res.ReadDataOf = 0, 0 // not read: the next run reads this part
	}
	or.mu.Lock()
	cancelled := rs.cancelled
	or.mu.Unlock()
	res.Ended = or.now().UTC()
	res.Duration = res.Ended.Sub(res.Started).Seconds()
	switch {
	case cancelled:
		res.Status, res.Error = configdb.StateCancelled, "cancelled by request"
	case err != nil || len(res.Errors) > 0:
		res.Status = configdb.StateFailed
	case (res.GC != nil && len(res.GC.Warnings) > 0) || (res.Verify != nil && len(res.Verify.Warnings) > 0):
		res.Status = configdb.StateWarning
	default:
		res.Status = configdb.StateSuccess
	}
	or.finish(ctx, rs, res.Status, res)
}

// finish stores the result of a session the server ran itself
// (maintenance, copy), lets it go and logs its end.
func (or *Orchestrator) finish(ctx context.Context, rs *runSession, status configdb.State, res any, logArgs ...any) {
	b, _ := json.Marshal(res)
	if _, err := or.store.UpdateSession(context.WithoutCancel(ctx), rs.id, status, b); err != nil {
		or.log.Error("end session", "session", rs.id, "err", err)
	}
	or.forget(rs)
	or.log.Info("session ended", append([]any{"session", rs.id, "job", rs.job, "kind", rs.kind, "status", status}, logArgs...)...)
}

// maintain sends the request to the repository agent and records what
// each part found; a damaged repository is an error of the result.
func (or *Orchestrator) maintain(ctx context.Context, rs *runSession, req mover.MaintainRequest, res *MaintenanceResult) error {
	c, err := or.agentClient(ctx, rs)
	if err != nil {
		return err
	}
	defer c.Close()
	mr, err := c.Maintain(ctx, req)
	if err != nil {
		return err
	}
	res.GC, res.Verify = mr.GC, mr.Verify
	if mr.GCError != "" {
		res.Errors = append(res.Errors, "gc: "+mr.GCError)
	}
	if mr.VerifyError != "" {
		res.Errors = append(res.Errors, "verify: "+mr.VerifyError)
	}
	if mr.Verify != nil && len(mr.Verify.Problems) > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("verify found %d problem(s) in repository %s", len(mr.Verify.Problems), rs.repo))
	}
	return nil
}

// nextReadDataPart is the part (0-based, of of) this run reads: the one
// after the part the job's last maintenance run read, so that every chunk
// is read over of runs.
func (or *Orchestrator) nextReadDataPart(ctx context.Context, rs *runSession, of int) int {
	ss, err := or.store.ListSessions(ctx, configdb.SessionFilter{JobName: rs.job, Kind: jobdef.KindMaintenance, Limit: 50})
	if err != nil {
		or.log.Warn("read-data rotation", "job", rs.job, "err", err)
		return 0
	}
	for _, se := range ss { // newest first
		if se.ID == rs.id || len(se.Result) == 0 {
			continue
		}
		var prev MaintenanceResult
		if json.Unmarshal(se.Result, &prev) != nil || prev.ReadDataOf != of || prev.ReadDataPart < 1 {
			continue
		}
		return prev.ReadDataPart % of // 1-based stored: the next part, 0-based
	}
	return 0
}
