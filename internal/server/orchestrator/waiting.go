package orchestrator

import (
	"context"

	"github.com/holdfast-backup/holdfast/internal/scheduler"
)

// noteWaiting records why queued tasks cannot run (no proxy reaches the
// disk, slots busy, repository unknown) in their error field, so `session
// show` and waiting clients tell the administrator; dispatch clears it.
func (or *Orchestrator) noteWaiting(ctx context.Context) {
	for _, w := range or.sched.Queued() {
		if w.Reason == scheduler.Runnable {
			continue
		}
		msg := "waiting: " + w.Detail
		or.mu.Lock()
		tr := or.tasks[atoi(w.Task.ID)]
		if tr == nil || tr.assign != nil || tr.ended || tr.row.Error == msg {
			or.mu.Unlock()
			continue
		}
		tr.row.Error = msg
		row := tr.row
		or.mu.Unlock()
		or.saveTask(ctx, row)
	}
}
