package configdb

import (
	"context"
	"strconv"
	"time"
)

// Task is the work on one VM disk within a session.
type Task struct {
	ID               int64
	SessionID        int64
	VM               string
	Disk             string
	Proxy            string // agent names, "" until assigned
	Repository       string
	Transport        string // direct, hotadd, nbd …
	State            State
	Queued           time.Time
	Started          time.Time // zero until running
	Ended            time.Time // zero until terminal
	BytesTotal       int64     // disk size
	BytesRead        int64     // read from the source
	BytesTransferred int64     // sent to the repository
	BytesWritten     int64     // stored (new chunks)
	Error            string
}

const taskColumns = `id, session_id, vm, disk, proxy, repository, transport, state, queued_at, started_at,
	ended_at, bytes_total, bytes_read, bytes_transferred, bytes_written, error`

func scanTask(sc interface{ Scan(...any) error }) (Task, error) {
	var t Task
	var state string
	err := sc.Scan(&t.ID, &t.SessionID, &t.VM, &t.Disk, &t.Proxy, &t.Repository, &t.Transport, &state,
		timeCol{&t.Queued}, timeCol{&t.Started}, timeCol{&t.Ended},
		&t.BytesTotal, &t.BytesRead, &t.BytesTransferred, &t.BytesWritten, &t.Error)
	t.State = State(state)
	return t, err
}

// CreateTask queues a task for t.SessionID, t.VM and t.Disk (a missing
// session is ErrConflict); State, times and counters start fresh.
func (s *Store) CreateTask(ctx context.Context, t Task) (Task, error) {
	if t.VM == "" || t.Disk == "" {
		return Task{}, invalid("task needs a VM and a disk")
	}
	out, err := scanTask(s.queryRow(ctx, s.db, `INSERT INTO tasks (session_id, vm, disk, proxy, repository,
		transport, state, queued_at, bytes_total) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+taskColumns,
		t.SessionID, t.VM, t.Disk, t.Proxy, t.Repository, t.Transport, string(StateQueued), s.timestamp(), t.BytesTotal))
	return out, s.wrap("create task", err)
}

// UpdateTask stores the assignment (proxy, repository, transport), state,
// counters and error of task t.ID. The first running state records the start
// time, a terminal state the end time.
func (s *Store) UpdateTask(ctx context.Context, t Task) (Task, error) {
	if !t.State.Valid() {
		return Task{}, invalid("task state %q", t.State)
	}
	now := s.timestamp()
	var started, ended *time.Time
	if t.State != StateQueued {
		started = &now
	}
	if t.State.Terminal() {
		ended = &now
	}
	out, err := scanTask(s.queryRow(ctx, s.db, `UPDATE tasks SET proxy = ?, repository = ?, transport = ?, state = ?,
		started_at = COALESCE(started_at, ?), ended_at = ?, bytes_total = ?, bytes_read = ?,
		bytes_transferred = ?, bytes_written = ?, error = ? WHERE id = ? RETURNING `+taskColumns,
		t.Proxy, t.Repository, t.Transport, string(t.State), started, ended,
		t.BytesTotal, t.BytesRead, t.BytesTransferred, t.BytesWritten, t.Error, t.ID))
	return out, s.wrap("update task "+strconv.FormatInt(t.ID, 10), err)
}

// ListTasks lists the tasks of a session in creation order.
func (s *Store) ListTasks(ctx context.Context, sessionID int64) ([]Task, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+taskColumns+" FROM tasks WHERE session_id = ? ORDER BY id", sessionID)
	if err != nil {
		return nil, s.wrap("list tasks", err)
	}
	defer rows.Close()
	var out []Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, s.wrap("list tasks", err)
		}
		out = append(out, t)
	}
	return out, s.wrap("list tasks", rows.Err())
}
