package orchestrator

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// Job retries re-run a failed VM as a whole (all its disks, a new
// snapshot and a new point), after the job's retry wait, as many times as
// the job says; the VM's earlier errors stay in its result.

// prepareRetryLocked resets a failed VM for another run. The session's
// pending count grows by the VM's tasks (each ends once more); the caller
// resubmits them after the wait.
func (or *Orchestrator) prepareRetryLocked(vm *vmRun) {
	vm.retries++
	why := strings.Join(vm.failed, "; ")
	vm.history = append(vm.history, fmt.Sprintf("run %d: %s", vm.retries, why))
	vm.failed, vm.done, vm.point, vm.guest = nil, false, nil, nil
	vm.disks = make([]jsonRaw, len(vm.disks))
	for _, tr := range vm.sess.tasks {
		if tr.vm == vm && tr.wholeVM {
			vm.disks = nil // the snapshot says how many
		}
	}
	for _, tr := range vm.sess.tasks {
		if tr.vm != vm {
			continue
		}
		vm.sess.pending++
		tr.base, tr.ended, tr.result, tr.assign = tr.attempt, false, nil, nil
		tr.row.State = configdb.StateQueued
		tr.row.Error = fmt.Sprintf("retry %d of %d after: %s", vm.retries, vm.sess.def.Retries.Count, why)
	}
	or.log.Warn("VM failed; retrying", "session", vm.sess.id, "vm", vm.name, "retry", vm.retries,
		"of", vm.sess.def.Retries.Count, "wait_seconds", vm.sess.def.Retries.WaitSeconds)
}

// resubmit queues a retried VM's tasks again (or ends them, if the session
// was cancelled during the wait).
func (or *Orchestrator) resubmit(vm *vmRun) {
	ctx := context.Background()
	or.mu.Lock()
	cancelled := vm.sess.cancelled
	or.mu.Unlock()
	if cancelled {
		for _, tr := range vm.sess.tasks {
			if tr.vm == vm && !tr.ended {
				or.finishUnsubmittedState(ctx, tr, configdb.StateCancelled, errCancelled.Error())
			}
		}
		return
	}
	var tasks []scheduler.Task
	var rows []configdb.Task
	or.mu.Lock()
	for _, tr := range vm.sess.tasks {
		if tr.vm != vm {
			continue
		}
		rows = append(rows, tr.row)
		tasks = append(tasks, scheduler.Task{ID: taskKey(tr.row.ID), JobID: vm.key.JobID, VM: vm.name,
			Disk: strconv.Itoa(tr.disk), SourceID: tr.reachKey(), RepositoryID: vm.sess.repo,
			Transports: tr.spec.TransportsFor(source.Transport(vm.sess.def.Transport))})
	}
	or.mu.Unlock()
	for _, row := range rows {
		or.saveTask(ctx, row)
	}
	if err := or.sched.Submit(tasks...); err != nil {
		or.log.Error("resubmit VM", "vm", vm.name, "err", err)
		for _, tr := range vm.sess.tasks {
			if tr.vm == vm {
				or.finishUnsubmitted(ctx, tr, err)
			}
		}
	}
}

// finishUnsubmitted ends a task that could not be queued.
func (or *Orchestrator) finishUnsubmitted(ctx context.Context, tr *taskRun, err error) {
	or.finishUnsubmittedState(ctx, tr, configdb.StateFailed, "queue: "+err.Error())
}

// finishUnsubmittedState ends a task that is not in the queue and not
// running (it never will).
func (or *Orchestrator) finishUnsubmittedState(ctx context.Context, tr *taskRun, st configdb.State, msg string) {
	r := &taskproto.Result{TaskID: tr.row.ID, Attempt: tr.attempt, Error: msg}
	or.mu.Lock()
	tr.result, tr.ended = r, true
	tr.row.State, tr.row.Error = st, r.Error
	var scanned *ScanSummary
	if tr.scan {
		scanned = scanEndedLocked(tr, r) // never queued, or cancelled: not scanned
	} else {
		tr.vm.failed = append(tr.vm.failed, r.Error)
	}
	row := tr.row
	tr.sess.pending--
	last := tr.sess.pending == 0
	or.mu.Unlock()
	or.saveTask(ctx, row)
	if scanned != nil {
		or.endScan(ctx, tr.vm, scanned)
	}
	if last {
		or.finishSession(ctx, tr.sess)
	}
}
