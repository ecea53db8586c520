package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// StartRestore queues a restore session with one task and returns the
// session once a proxy has taken the task (or the session ended first).
// The restore belongs to its requester until then: when ctx ends before a
// proxy takes it (the client went away), the session is cancelled, so a
// restore nobody waits for any more never runs later, when a proxy
// appears.
func (or *Orchestrator) StartRestore(ctx context.Context, req taskproto.RestoreRequest) (configdb.Session, error) {
	<-or.ready
	if req.Target == "" || !filepath.IsAbs(req.Target) {
		return configdb.Session{}, fmt.Errorf("%w: restore target %q must be an absolute path on the proxy", taskproto.ErrInvalid, req.Target)
	}
	if err := or.checkRestoreTarget(ctx, req.Target); err != nil {
		return configdb.Session{}, err
	}
	p, err := or.store.ResolvePoint(ctx, req.Point)
	if err != nil {
		return configdb.Session{}, err
	}
	var disks []repo.DiskManifest
	if err := json.Unmarshal(p.Disks, &disks); err != nil {
		return configdb.Session{}, fmt.Errorf("point %s: stored disks: %w", p.ID, err)
	}
	if req.Disk < 0 || req.Disk >= len(disks) {
		return configdb.Session{}, fmt.Errorf("%w: point %s has no disk %d (it has %d)", taskproto.ErrInvalid, p.ID, req.Disk, len(disks))
	}
	jobName, password, err := or.pointPassword(ctx, p, req.Password)
	if err != nil {
		return configdb.Session{}, err
	}
	m := repo.Manifest{Version: 1, ID: p.ID, VM: p.VM, Time: p.Created, Disks: disks}
	mj, err := json.Marshal(m)
	if err != nil {
		return configdb.Session{}, err
	}
	se, err := or.store.CreateSession(ctx, jobName, "restore")
	if err != nil {
		return configdb.Session{}, err
	}
	rs := &runSession{id: se.ID, job: jobName, kind: taskproto.KindRestore, password: password, repo: p.Repository,
		started: or.now()}
	vm := &vmRun{name: p.VM, sess: rs, key: scheduler.VMKey{JobID: sessionKey(se.ID), VM: p.VM}, previous: mj,
		point: &m}
	rs.vms = []*vmRun{vm}
	row, err := or.store.CreateTask(ctx, configdb.Task{SessionID: se.ID, VM: p.VM, Disk: strconv.Itoa(req.Disk),
		PointID: p.ID, BytesTotal: disks[req.Disk].Size})
	if err != nil {
		return se, err
	}
	taken := make(chan struct{})
	rs.tasks = []*taskRun{{row: row, sess: rs, vm: vm, disk: req.Disk, target: req.Target, force: req.Force, taken: taken}}
	task := scheduler.Task{ID: taskKey(row.ID), JobID: sessionKey(se.ID), VM: p.VM, Disk: strconv.Itoa(req.Disk),
		SourceID: restoreKey(req.Target), RepositoryID: p.Repository, Transports: []source.Transport{source.TransportDirect},
		Priority: 10} // restores go before queued backups
	if err := or.enqueue(ctx, rs, [][]scheduler.Task{{task}}); err != nil {
		res, _ := json.Marshal(map[string]string{"error": err.Error()})
		_, _ = or.store.UpdateSession(context.WithoutCancel(ctx), se.ID, configdb.StateFailed, res)
		return se, err
	}
	select {
	case <-taken:
	case <-ctx.Done():
		or.log.Warn("restore requester went away before a proxy took the restore: cancelling", "session", se.ID)
		bg := context.WithoutCancel(ctx)
		if _, err := or.CancelSession(bg, se.ID); err != nil && !errors.Is(err, configdb.ErrConflict) {
			or.log.Error("cancel restore", "session", se.ID, "err", err)
		}
		se, _ = or.store.GetSession(bg, se.ID)
		return se, fmt.Errorf("restore session %d cancelled: its requester went away before a proxy took it: %w",
			se.ID, context.Cause(ctx))
	}
	return or.store.GetSession(ctx, se.ID)
}

// checkRestoreTarget refuses at once a target that no known proxy takes
// restores to (by the restore roots and devices it announced), rather
// than queueing a restore that could never run. The proxy checks again
// when it writes.
func (or *Orchestrator) checkRestoreTarget(ctx context.Context, target string) error {
	agents, err := or.store.ListAgents(ctx, configdb.AgentProxy)
	if err != nil {
		return err
	}
	for _, a := range agents {
		if parseCaps(a.Capabilities).restores(filepath.Clean(target)) {
			return nil
		}
	}
	return fmt.Errorf("%w: no proxy takes restores to %s (a proxy writes restores only beneath its --restore-root directories and to its --restore-device devices)",
		taskproto.ErrInvalid, target)
}

// markTakenLocked tells a waiting restore requester that its task was
// handed to a proxy or ended (or.mu held).
func (tr *taskRun) markTakenLocked() {
	if tr.taken != nil {
		close(tr.taken)
		tr.taken = nil
	}
}
