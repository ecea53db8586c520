package orchestrator

import (
	"context"
	"errors"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// errCancelled ends the attempts of a cancelled session.
var errCancelled = errors.New("cancelled by request")

// CancelSession stops a running session: queued tasks leave the queue,
// running attempts are dropped (the proxy learns it at its next progress
// report and stops), nothing more is committed, and the session ends
// "cancelled". Points of VMs already committed stay.
func (or *Orchestrator) CancelSession(ctx context.Context, id int64) (configdb.Session, error) {
	<-or.ready
	or.mu.Lock()
	rs := or.sessions[id]
	if rs == nil {
		or.mu.Unlock()
		se, err := or.store.GetSession(ctx, id)
		if err == nil {
			err = fmt.Errorf("%w: session %d is not running (%s)", configdb.ErrConflict, id, se.State)
		}
		return se, err
	}
	rs.cancelled = true
	if rs.stop != nil { // a session the server runs itself (maintenance, copy) ends
		rs.stop()
		or.mu.Unlock()
		or.log.Warn("session cancelled", "session", id, "kind", rs.kind)
		return or.store.GetSession(ctx, id)
	}
	var running []scheduler.Assignment
	var runningTasks, queued []*taskRun
	for _, tr := range rs.tasks {
		switch {
		case tr.ended:
		case tr.assign != nil:
			running = append(running, *tr.assign)
			runningTasks = append(runningTasks, tr)
			tr.assign = nil // later reports of the attempt are stale: the proxy stops
		default:
			queued = append(queued, tr)
		}
	}
	or.mu.Unlock()
	or.log.Warn("session cancelled", "session", id, "running", len(running), "queued", len(queued))
	for _, tr := range queued {
		if or.sched.Cancel(taskKey(tr.row.ID)) {
			or.finishUnsubmittedState(ctx, tr, configdb.StateCancelled, errCancelled.Error())
		}
		// not in the queue: it is being handed out right now and ends
		// through its attempt below or when its proxy reports (stale).
	}
	for i, a := range running {
		or.finishAttempt(ctx, runningTasks[i], a, &taskproto.Result{TaskID: runningTasks[i].row.ID,
			Attempt: runningTasks[i].attempt, Error: errCancelled.Error()})
	}
	return or.store.GetSession(ctx, id)
}
