package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// mountSource is the scheduler source of mount tasks: every proxy that
// serves mounts reaches it (see proxyCaps.reachMap).
const mountSource = "mount:"

// StartMount queues an Instant VM Recovery session: one task that a proxy
// (the mount server) runs for as long as the session lasts, serving the
// point's disks over NBD and NFS from the repository agent (or, with
// Mount.Publish, mounting its filesystems read-only there). The session's
// result shows the export URLs once they answer; cancelling the session
// stops the exports (the redo data stays on the proxy).
func (or *Orchestrator) StartMount(ctx context.Context, req taskproto.MountRequest) (configdb.Session, error) {
	<-or.ready
	p, err := or.store.ResolvePoint(ctx, req.Point)
	if err != nil {
		return configdb.Session{}, err
	}
	var disks []repo.DiskManifest
	if err := json.Unmarshal(p.Disks, &disks); err != nil {
		return configdb.Session{}, fmt.Errorf("point %s: stored disks: %w", p.ID, err)
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
	se, err := or.store.CreateSession(ctx, jobName, mountKind(&req.Mount))
	if err != nil {
		return configdb.Session{}, err
	}
	mount := req.Mount
	rs := &runSession{id: se.ID, job: jobName, kind: taskproto.KindMount, password: password, repo: p.Repository,
		started: or.now(), mount: &mount}
	vm := &vmRun{name: p.VM, sess: rs, key: scheduler.VMKey{JobID: sessionKey(se.ID), VM: p.VM}, previous: mj, point: &m}
	rs.vms = []*vmRun{vm}
	row, err := or.store.CreateTask(ctx, configdb.Task{SessionID: se.ID, VM: p.VM, Disk: "all", PointID: p.ID})
	if err != nil {
		return se, err
	}
	rs.tasks = []*taskRun{{row: row, sess: rs, vm: vm, wholeVM: true}}
	task := scheduler.Task{ID: taskKey(row.ID), JobID: sessionKey(se.ID), VM: p.VM, Disk: "all",
		SourceID: mountSource, RepositoryID: p.Repository, Transports: source.AllTransports(), Priority: 20}
	if err := or.enqueue(ctx, rs, [][]scheduler.Task{{task}}); err != nil {
		res, _ := json.Marshal(map[string]string{"error": err.Error()})
		_, _ = or.store.UpdateSession(context.WithoutCancel(ctx), se.ID, configdb.StateFailed, res)
		return se, err
	}
	return or.store.GetSession(ctx, se.ID)
}

// mountKind is the session kind of a mount: "publish" or "instant-recovery".
func mountKind(m *taskproto.Mount) string {
	if m != nil && m.Publish {
		return "publish"
	}
	return "instant-recovery"
}

// pointPassword finds the repository password for a point: given, or the
// job's that made it. It returns the job's name if the job still exists.
func (or *Orchestrator) pointPassword(ctx context.Context, p configdb.Point, given string) (string, string, error) {
	jobName, password := "", given
	if j, err := or.store.GetJob(ctx, p.JobName); err == nil {
		jobName = j.Name
		if password == "" {
			if def, err := parseDefinition(j.Definition); err == nil && def.PasswordSecret != "" {
				pw, err := or.store.GetSecret(ctx, def.PasswordSecret)
				if err != nil {
					return "", "", err
				}
				password = string(pw)
			}
		}
	}
	if password == "" {
		return "", "", fmt.Errorf("%w: job %q of point %s is gone: give the repository password", taskproto.ErrInvalid, p.JobName, p.ID)
	}
	return jobName, password, nil
}

// mountInfo records what a mount attempt serves in the session's result.
func (or *Orchestrator) mountInfo(ctx context.Context, tr *taskRun, info json.RawMessage) {
	or.mu.Lock()
	if string(tr.sess.mountInfo) == string(info) {
		or.mu.Unlock()
		return
	}
	tr.sess.mountInfo = info
	proxy := tr.row.Proxy
	or.mu.Unlock()
	res, _ := json.Marshal(map[string]any{"status": configdb.StateRunning, "session": tr.sess.id, "kind": mountKind(tr.sess.mount),
		"vm": tr.vm.name, "point": tr.vm.point.ID, "proxy": proxy, "serving": info})
	if _, err := or.store.UpdateSession(ctx, tr.sess.id, configdb.StateRunning, res); err != nil {
		or.log.Warn("record mount info", "session", tr.sess.id, "err", err)
	}
}
