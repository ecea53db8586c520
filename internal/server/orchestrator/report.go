package orchestrator

import (
	"context"
	"errors"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// current returns the task if attempt is its running attempt on proxy.
func (or *Orchestrator) currentLocked(proxy string, id int64, attempt int) (*taskRun, error) {
	tr := or.tasks[id]
	if tr == nil || tr.assign == nil || tr.attempt != attempt || tr.assign.Proxy != proxy {
		return nil, taskproto.ErrStale
	}
	return tr, nil
}

// TaskProgress records a running attempt's progress.
func (or *Orchestrator) TaskProgress(ctx context.Context, proxy string, p taskproto.Progress) error {
	or.touchProxy(ctx, proxy)
	or.mu.Lock()
	tr, err := or.currentLocked(proxy, p.TaskID, p.Attempt)
	if err != nil {
		or.mu.Unlock()
		return err
	}
	tr.last = p
	row := tr.row
	applyCounters(&row, p.Counters, p.Stages)
	tr.row = row
	mount := tr.sess.kind == taskproto.KindMount
	or.mu.Unlock()
	or.saveTask(ctx, row)
	if mount && len(p.Info) > 0 {
		or.mountInfo(ctx, tr, p.Info)
	}
	return nil
}

func applyCounters(row *configdb.Task, c taskproto.Counters, st taskproto.Stages) {
	row.BytesTotal, row.BytesRead, row.BytesTransferred, row.BytesWritten = c.BytesTotal, c.BytesRead, c.BytesTransferred, c.BytesWritten
	row.BytesDone = c.BytesDone
	row.SourceNanos, row.ProxyNanos, row.NetworkNanos, row.TargetNanos = st.SourceNanos, st.ProxyNanos, st.NetworkNanos, st.TargetNanos
}

// TaskResult ends a running attempt.
func (or *Orchestrator) TaskResult(ctx context.Context, proxy string, r taskproto.Result) error {
	or.touchProxy(ctx, proxy)
	or.mu.Lock()
	tr, err := or.currentLocked(proxy, r.TaskID, r.Attempt)
	if err != nil {
		or.mu.Unlock()
		return err
	}
	a := *tr.assign
	tr.assign = nil // a repeated report of this attempt is stale
	or.mu.Unlock()
	or.finishAttempt(ctx, tr, a, &r)
	return nil
}

// finishAttempt records an attempt's end and gives its slots back; the
// VM's last disk commits the point (in the scheduler's Release hook) and
// the session's last task ends the session.
func (or *Orchestrator) finishAttempt(ctx context.Context, tr *taskRun, a scheduler.Assignment, r *taskproto.Result) {
	or.mu.Lock()
	if tr.assign != nil && tr.attempt == tr.base+a.Attempt {
		tr.assign = nil
	}
	tr.result, tr.ended = r, true
	row := tr.row
	applyCounters(&row, r.Counters, r.Stages)
	row.Warnings = r.Warnings
	row.State, row.Error = configdb.StateSuccess, ""
	var scanned *ScanSummary
	if tr.scan {
		scanned = scanEndedLocked(tr, r)
		switch {
		case r.Error != "" && tr.sess.cancelled:
			row.State, row.Error = configdb.StateCancelled, r.Error
		case r.Error != "":
			row.State, row.Error = configdb.StateFailed, r.Error
		case scanned.Result != repo.ScanClean || len(r.Warnings) > 0:
			row.State = configdb.StateWarning
		}
	} else if r.Error != "" {
		row.State, row.Error = configdb.StateFailed, r.Error
		if tr.sess.cancelled {
			row.State = configdb.StateCancelled
		}
		tr.vm.failed = append(tr.vm.failed, "disk "+itoa(int64(tr.disk))+": "+r.Error)
	} else {
		if len(r.Warnings) > 0 {
			row.State = configdb.StateWarning
		}
		if tr.sess.kind == taskproto.KindBackup {
			if tr.wholeVM {
				tr.vm.disks = append([]jsonRaw(nil), r.Disks...)
				tr.vm.notes, tr.vm.config = r.Notes, r.Config
			} else {
				tr.vm.disks[tr.disk] = r.Disk
			}
		}
	}
	tr.row = row
	or.mu.Unlock()
	or.saveTask(ctx, row)
	if scanned != nil {
		or.endScan(ctx, tr.vm, scanned)
	}
	var err error
	if r.Error != "" {
		err = errors.New(r.Error)
	}
	if _, derr := or.sched.Done(a, err); derr != nil && !errors.Is(derr, scheduler.ErrStale) {
		or.log.Warn("scheduler done", "task", tr.row.ID, "err", derr)
	}
	or.mu.Lock()
	tr.sess.pending--
	last := tr.sess.pending == 0
	or.mu.Unlock()
	if last {
		or.finishSession(context.WithoutCancel(ctx), tr.sess)
	}
}
