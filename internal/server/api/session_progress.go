package api

import (
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// viewSessionTasks is a session as GET /api/v1/sessions/{id} and the
// dashboard show it: with its tasks, why it waits, and its progress.
func viewSessionTasks(se configdb.Session, tasks []configdb.Task, now time.Time) apitypes.Session {
	v := viewSession(se)
	v.Tasks = list(tasks, viewTask)
	v.Waiting = sessionWaiting(se, tasks)
	v.Progress = sessionProgress(se, tasks, now)
	return v
}

// sessionProgress sums the tasks of a session: bytes processed of the
// disks' total, and the rate: bytes processed over the time since its
// first task started (until the session ended, or now).
func sessionProgress(se configdb.Session, tasks []configdb.Task, now time.Time) *apitypes.SessionProgress {
	p := &apitypes.SessionProgress{TasksByState: map[string]int{}}
	var first time.Time
	for _, t := range tasks {
		p.BytesDone += t.BytesDone
		p.BytesTotal += t.BytesTotal
		p.TasksByState[string(t.State)]++
		if !t.Started.IsZero() && (first.IsZero() || t.Started.Before(first)) {
			first = t.Started
		}
	}
	end := now
	if !se.Ended.IsZero() {
		end = se.Ended
	}
	if el := end.Sub(first); !first.IsZero() && el > 0 {
		p.BytesPerSecond = int64(float64(p.BytesDone) / el.Seconds())
	}
	return p
}
