package configdb

import (
	"context"
	"encoding/json"
	"time"
)

// Observer is told of every session and task update that reaches a
// terminal state (success, warning, failed, cancelled), after it is stored:
// the server's metrics count and time them. A task that is requeued and
// ends again is reported again (one report per ended attempt). Observers
// must return quickly; they run on the caller's goroutine.
type Observer interface {
	SessionEnded(Session)
	TaskEnded(Task)
}

// WithObserver makes the store report ended sessions and tasks to o.
func WithObserver(o Observer) Option { return func(op *options) { op.observer = o } }

// JobStatus is what the metrics report per job: its last ended session and
// the end of its last successful one (success or warning).
type JobStatus struct {
	Job         string
	LastSession int64
	LastState   State
	LastEnded   time.Time
	LastResult  json.RawMessage // the last session's result document
	LastSuccess time.Time       // zero: none kept
}

// JobStatuses returns the status of every job that has an ended session
// still kept, by job name.
func (s *Store) JobStatuses(ctx context.Context) ([]JobStatus, error) {
	rows, err := s.query(ctx, s.db, `SELECT s.job_name, s.id, s.state, s.ended_at, s.result,
		(SELECT MAX(s3.ended_at) FROM sessions s3 WHERE s3.job_name = s.job_name AND s3.state IN (?, ?))
		FROM sessions s WHERE s.job_name <> '' AND s.id = (SELECT MAX(s2.id) FROM sessions s2
			WHERE s2.job_name = s.job_name AND s2.ended_at IS NOT NULL)
		ORDER BY s.job_name`, string(StateSuccess), string(StateWarning))
	if err != nil {
		return nil, s.wrap("job statuses", err)
	}
	defer rows.Close()
	var out []JobStatus
	for rows.Next() {
		var js JobStatus
		var state string
		if err := rows.Scan(&js.Job, &js.LastSession, &state, timeCol{&js.LastEnded}, jsonCol{&js.LastResult},
			timeCol{&js.LastSuccess}); err != nil {
			return nil, s.wrap("job statuses", err)
		}
		js.LastState = State(state)
		out = append(out, js)
	}
	return out, s.wrap("job statuses", rows.Err())
}

// LastPoints returns, per VM, when its newest restore point still kept was
// created.
func (s *Store) LastPoints(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.query(ctx, s.db, "SELECT vm, MAX(created_at) FROM points GROUP BY vm")
	if err != nil {
		return nil, s.wrap("last points", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var vm string
		var t time.Time
		if err := rows.Scan(&vm, timeCol{&t}); err != nil {
			return nil, s.wrap("last points", err)
		}
		out[vm] = t
	}
	return out, s.wrap("last points", rows.Err())
}

// SessionCount is the number of sessions of a kind in a state.
type SessionCount struct {
	Kind  string
	State State
	N     int64
}

// ActiveSessions counts the queued and running sessions by kind and state.
func (s *Store) ActiveSessions(ctx context.Context) ([]SessionCount, error) {
	rows, err := s.query(ctx, s.db, `SELECT kind, state, COUNT(*) FROM sessions WHERE state IN (?, ?)
		GROUP BY kind, state ORDER BY kind, state`, string(StateQueued), string(StateRunning))
	if err != nil {
		return nil, s.wrap("active sessions", err)
	}
	defer rows.Close()
	var out []SessionCount
	for rows.Next() {
		var c SessionCount
		var state string
		if err := rows.Scan(&c.Kind, &state, &c.N); err != nil {
			return nil, s.wrap("active sessions", err)
		}
		c.State = State(state)
		out = append(out, c)
	}
	return out, s.wrap("active sessions", rows.Err())
}
