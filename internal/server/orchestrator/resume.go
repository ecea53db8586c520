package orchestrator

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// restartReason ends what a previous server process left unfinished and
// cannot run again.
const restartReason = "the backup server stopped while the session ran"

// Restart recovery. The shared mover sessions of a previous server process
// die with it (the repository agents end the sessions of a server
// certificate the server no longer vouches for), so no attempt of it can be
// committed any more. A backup session of a job it left running is run
// again instead of failed: its VMs whose point the previous process
// committed stay done; every task of the other VMs is queued again as its
// next attempt (chunks the earlier attempt stored are reused, so the rerun
// reads the disk but hardly uploads anything). A proxy still running or
// reporting an attempt of the previous process is answered 409 (stale) and
// drops it. Sessions that cannot run again (restores and Instant VM
// Recovery sessions, whose requesters are gone; a job deleted meanwhile)
// fail, saying why. A committed VM whose point the job's scan_after did
// not scan yet (no result in the points table) is scanned again.

// recoverSessions runs again the backup sessions a previous server process
// left unfinished and fails every other unfinished session.
func (or *Orchestrator) recoverSessions(ctx context.Context) error {
	var resumed []int64
	for _, st := range []configdb.State{configdb.StateRunning, configdb.StateQueued} {
		ses, err := or.store.ListSessions(ctx, configdb.SessionFilter{State: st, Limit: 1 << 20})
		if err != nil {
			return err
		}
		for _, se := range ses {
			if se.Kind != taskproto.KindBackup || se.JobName == "" {
				continue
			}
			if err := or.resume(ctx, se); err != nil {
				or.log.Warn("a session the previous server process left running cannot run again",
					"session", se.ID, "job", se.JobName, "err", err)
				res, _ := json.Marshal(map[string]string{"error": restartReason + "; it could not run again: " + err.Error()})
				if _, uerr := or.store.UpdateSession(ctx, se.ID, configdb.StateFailed, res); uerr != nil {
					return uerr
				}
				continue
			}
			resumed = append(resumed, se.ID)
		}
	}
	n, err := or.store.FailUnfinished(ctx, restartReason, resumed...)
	if err != nil {
		return err
	}
	if n > 0 {
		or.log.Warn("sessions left running by the previous server process marked failed", "sessions", n)
	}
	return nil
}

// resume runs a backup session of the previous server process again.
func (or *Orchestrator) resume(ctx context.Context, se configdb.Session) error {
	j, err := or.store.GetJob(ctx, se.JobName)
	if err != nil {
		return err
	}
	old, err := or.store.ListTasks(ctx, se.ID)
	if err != nil {
		return err
	}
	rows := map[string]configdb.Task{}
	for _, t := range old {
		rows[t.VM+"/"+t.Disk] = t
	}
	used := map[int64]bool{}
	rs, batches, err := or.build(ctx, se, j, func(vm, disk string) (configdb.Task, error) {
		if t, ok := rows[vm+"/"+disk]; ok && !used[t.ID] {
			used[t.ID] = true
			return t, nil
		}
		return or.store.CreateTask(ctx, configdb.Task{SessionID: se.ID, VM: vm, Disk: disk})
	})
	if err != nil {
		return err
	}
	rs.started = se.Started
	points, err := or.sessionPoints(ctx, se, rs.repo)
	if err != nil {
		return err
	}
	var queue [][]scheduler.Task
	var rescan []*vmRun // committed, but the scan the job asks for did not end
	for i, vm := range rs.vms {
		if p, ok := points[vm.name]; ok {
			or.resumeCommitted(ctx, rs, vm, p)
			if rs.def.ScanAfter != nil && p.Scan.Result == "" {
				rescan = append(rescan, vm)
			}
			continue
		}
		or.resumeRequeued(ctx, rs, vm)
		queue = append(queue, batches[i])
	}
	for _, t := range old {
		if !used[t.ID] && !t.State.Terminal() {
			t.State, t.Error = configdb.StateFailed, "no longer part of job "+j.Name+" when the server restarted"
			if t.Disk == "scan" {
				t.Error = "the backup server restarted during the scan; scanned again"
			}
			or.saveTask(ctx, t)
		}
	}
	if err := or.enqueue(ctx, rs, queue); err != nil {
		return err
	}
	for _, vm := range rescan {
		m := *vm.point
		m.Version = 1
		or.queueScan(ctx, vm, &m)
	}
	or.log.Warn("session left running by the previous server process runs again", "session", se.ID,
		"job", se.JobName, "vms", len(queue), "committed", len(points))
	or.mu.Lock()
	done := rs.pending == 0
	or.mu.Unlock()
	if done {
		or.finishSession(ctx, rs)
	}
	return nil
}

// sessionPoints returns the points the session committed, by VM.
func (or *Orchestrator) sessionPoints(ctx context.Context, se configdb.Session, repository string) (map[string]configdb.Point, error) {
	ps, err := or.store.ListPoints(ctx, configdb.PointFilter{JobName: se.JobName, Repository: repository, Limit: 1 << 20})
	if err != nil {
		return nil, err
	}
	out := map[string]configdb.Point{}
	for _, p := range ps {
		if p.SessionID == se.ID {
			out[p.VM] = p
		}
	}
	return out, nil
}

// resumeCommitted marks a VM whose point the previous process committed
// as done, its tasks ended.
func (or *Orchestrator) resumeCommitted(ctx context.Context, rs *runSession, vm *vmRun, p configdb.Point) {
	m := &repo.Manifest{ID: p.ID, VM: p.VM, Time: p.Created}
	_ = json.Unmarshal(p.Disks, &m.Disks)
	vm.point, vm.done = m, true
	for _, tr := range rs.tasks {
		if tr.vm != vm {
			continue
		}
		tr.ended = true
		if !tr.row.State.Terminal() {
			tr.row.State, tr.row.Error = configdb.StateSuccess, ""
			or.saveTask(ctx, tr.row)
		}
	}
}

// resumeRequeued queues every task of a VM again, as the next attempt.
func (or *Orchestrator) resumeRequeued(ctx context.Context, rs *runSession, vm *vmRun) {
	for _, tr := range rs.tasks {
		if tr.vm != vm {
			continue
		}
		tr.base = tr.row.Attempt // the proxies' reports of earlier attempts are stale
		tr.attempt = tr.row.Attempt
		if tr.row.Attempt > 0 {
			tr.row.Error = "the backup server restarted during attempt " + strconv.Itoa(tr.row.Attempt) + "; queued again"
		}
		tr.row.State = configdb.StateQueued
		or.saveTask(ctx, tr.row)
	}
}
