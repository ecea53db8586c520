package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/repocopy"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// CopyResult is a copy session's result document (what `job run --wait
// --json` prints for a copy job).
type CopyResult struct {
	Status       configdb.State `json:"status"`
	Session      int64          `json:"session"`
	Job          string         `json:"job,omitempty"`
	Kind         string         `json:"kind"`
	Repository   string         `json:"repository"`    // the source
	ToRepository string         `json:"to_repository"` // the target
	Started      time.Time      `json:"started"`
	Ended        time.Time      `json:"ended"`
	Duration     float64        `json:"duration_seconds"`
	Copied       []string       `json:"copied"`  // points committed at the target
	Skipped      []string       `json:"skipped"` // selected points the target had
	Copy         repocopy.Stats `json:"copy"`
	// Forgotten are the target's points the job's retention removed.
	Forgotten []string `json:"forgotten,omitempty"`
	Warnings  []string `json:"warnings,omitempty"`
	Error     string   `json:"error,omitempty"`
	VMs       []any    `json:"vms"` // none: the shape of a backup's result
}

// copyVerifySample is how many chunks sent per point a copy job fetches
// back from the target and opens before committing (as holdfast copy).
const copyVerifySample = 8

// copyRun is what a copy session needs besides its runSession: the
// target and its password.
type copyRun struct {
	rs         *runSession
	to, toPass string
}

// startCopy starts a session of a copy job: the server opens a client of
// each repository agent (it holds both passwords, sealed) and copies with
// internal/repocopy, chunks flowing agent → server → agent. It returns
// once the session runs; the result is stored when the copy ends.
func (or *Orchestrator) startCopy(ctx context.Context, se configdb.Session, j configdb.Job) error {
	rs, err := or.serverSession(ctx, se, j, jobdef.KindCopy)
	if err != nil {
		return err
	}
	to := rs.def.Copy.ToRepository
	toPass := []byte(rs.password)
	if _, err := or.store.GetAgent(ctx, configdb.AgentRepository, to); errors.Is(err, configdb.ErrNotFound) {
		return fmt.Errorf("%w: target repository %q is not registered (start its agent: holdfast repository --name %s --path DIR --join-token T)",
			taskproto.ErrInvalid, to, to)
	} else if err != nil {
		return err
	}
	if ref := rs.def.Copy.ToPasswordSecret; ref != "" {
		if toPass, err = or.store.GetSecret(ctx, ref); err != nil {
			return fmt.Errorf("job %s: target repository password: %w", j.Name, err)
		}
	}
	cr := &copyRun{rs: rs, to: to, toPass: string(toPass)}
	return or.launch(ctx, rs, func(ctx context.Context) { or.runCopy(ctx, cr) }, "from", rs.repo, "to", to)
}

// runCopy copies, applies the retention at the target and stores the
// result.
func (or *Orchestrator) runCopy(ctx context.Context, cr *copyRun) {
	rs := cr.rs
	res := CopyResult{Session: rs.id, Job: rs.job, Kind: rs.kind, Repository: rs.repo, ToRepository: cr.to,
		Started: rs.started.UTC(), Copied: []string{}, Skipped: []string{}, VMs: []any{}}
	err := or.copyPoints(ctx, cr, &res)
	if err != nil {
		res.Error = err.Error()
	}
	or.mu.Lock()
	cancelled := rs.cancelled
	or.mu.Unlock()
	res.Ended = or.now().UTC()
	res.Duration = res.Ended.Sub(res.Started).Seconds()
	switch {
	case cancelled:
		res.Status, res.Error = configdb.StateCancelled, "cancelled by request"
	case err != nil:
		res.Status = configdb.StateFailed
	case len(res.Warnings) > 0:
		res.Status = configdb.StateWarning
	default:
		res.Status = configdb.StateSuccess
	}
	or.finish(ctx, rs, res.Status, res, "copied", len(res.Copied), "chunks_sent", res.Copy.ChunksSent)
	if rs.job != "" {
		or.fireChained(context.WithoutCancel(ctx), rs.job)
	}
}

// copyPoints opens both agents, copies the job's points the target lacks,
// records them and applies the retention at the target.
func (or *Orchestrator) copyPoints(ctx context.Context, cr *copyRun, res *CopyResult) error {
	rs := cr.rs
	c := rs.def.Copy
	src, err := or.copyClient(ctx, rs.repo, rs.password, rs.def.Throttle)
	if err != nil {
		return fmt.Errorf("source %s: %w", rs.repo, err)
	}
	defer src.Close()
	dst, err := or.copyClient(ctx, cr.to, cr.toPass, rs.def.Throttle)
	if err != nil {
		return fmt.Errorf("target %s: %w", cr.to, err)
	}
	defer dst.Close()
	out, err := repocopy.Copy(ctx, src, dst, repocopy.Options{Match: c.Matches, NewerOnly: c.NewerOnly,
		VerifySample: copyVerifySample, Clock: or.o.Clock, Logger: or.log.With("session", rs.id)})
	res.Copy, res.Skipped = out.Stats, append(res.Skipped, out.Skipped...)
	for _, m := range out.Copied {
		res.Copied = append(res.Copied, m.ID)
		or.recordCopied(ctx, cr, m)
	}
	if err != nil {
		return err
	}
	or.retainCopies(ctx, cr, dst, res)
	return nil
}

// copyClient returns a client of repository agent name, its connections
// paced by the job's traffic rules.
func (or *Orchestrator) copyClient(ctx context.Context, name, password string, rules []string) (*mover.Client, error) {
	url := or.repoURL(name)
	if url == "" {
		return nil, fmt.Errorf("repository %s has announced no address", name)
	}
	return or.mover.shaped(ctx, name, url, password, rules)
}

// recordCopied records a point committed at the target in the database,
// as a backup's point, so the server lists and restores it.
func (or *Orchestrator) recordCopied(ctx context.Context, cr *copyRun, m *repo.Manifest) {
	var total int64
	for _, d := range m.Disks {
		total += d.Size
	}
	dj, _ := json.Marshal(m.Disks)
	_, err := or.store.RecordPoint(context.WithoutCancel(ctx), configdb.Point{ID: m.ID, Repository: cr.to, VM: m.VM,
		JobName: cr.rs.job, SessionID: cr.rs.id, Created: m.Time, Disks: dj, BytesTotal: total})
	if err != nil {
		or.log.Warn("record copied point", "point", m.ID, "repository", cr.to, "err", err)
	}
}

// retainCopies applies the job's GFS retention to the target's points of
// the VMs the job copies (the target's own list: points copied by earlier
// runs or other jobs count alike), as retain does for a backup job's VM.
// A held or immutable point is kept; failures are warnings.
func (or *Orchestrator) retainCopies(ctx context.Context, cr *copyRun, dst *mover.Client, res *CopyResult) {
	policy := cr.rs.def.Retention
	if policy.Empty() {
		return
	}
	ms, err := dst.ListPoints(ctx)
	if err != nil {
		res.Warnings = append(res.Warnings, "retention: "+err.Error())
		return
	}
	var mine []*repo.Manifest
	for _, m := range ms {
		if cr.rs.def.Copy.Matches(m.VM) {
			mine = append(mine, m)
		}
	}
	for _, d := range repo.ApplyPolicy(mine, policy, time.Local) {
		if d.Keep {
			continue
		}
		id := d.Point.ID
		if err := dst.ForgetPoint(ctx, id); errors.Is(err, repo.ErrPointHeld) || errors.Is(err, storage.ErrImmutable) {
			res.Warnings = append(res.Warnings, "retention: point "+id+" kept: "+err.Error())
			continue
		} else if err != nil {
			res.Warnings = append(res.Warnings, "retention: "+err.Error())
			return
		}
		if err := or.store.DeletePoint(ctx, cr.to, id); err != nil && !errors.Is(err, configdb.ErrNotFound) {
			res.Warnings = append(res.Warnings, "retention: "+err.Error())
		}
		res.Forgotten = append(res.Forgotten, id)
		or.log.Info("retention: copied point forgotten", "repository", cr.to, "vm", d.Point.VM, "point", id,
			"policy", policy.String())
	}
}
