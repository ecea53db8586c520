package configdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
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
	Started          time.Time // zero until running; kept when requeued
	Ended            time.Time // zero until terminal; cleared when requeued
	BytesTotal       int64     // disk size
	BytesRead        int64     // read from the source
	BytesTransferred int64     // sent to the repository
	BytesWritten     int64     // stored (new chunks)
	BytesDone        int64     // disk bytes processed so far (read, skipped or reused): progress
	Error            string
	Attempt          int      // retry attempt, counted by the caller
	PointID          string   // the repository point written, "" until known
	SourceNanos      int64    // time spent per pipeline stage, in nanoseconds
	ProxyNanos       int64    //
	NetworkNanos     int64    //
	TargetNanos      int64    //
	Warnings         []string // one line each; nil when none
}

const taskColumns = `id, session_id, vm, disk, proxy, repository, transport, state, queued_at, started_at,
	ended_at, bytes_total, bytes_read, bytes_transferred, bytes_written, error,
	attempt, point_id, source_ns, proxy_ns, network_ns, target_ns, warnings, bytes_done`

func scanTask(sc interface{ Scan(...any) error }) (Task, error) {
	var t Task
	var state, warnings string
	err := sc.Scan(&t.ID, &t.SessionID, &t.VM, &t.Disk, &t.Proxy, &t.Repository, &t.Transport, &state,
		timeCol{&t.Queued}, timeCol{&t.Started}, timeCol{&t.Ended},
		&t.BytesTotal, &t.BytesRead, &t.BytesTransferred, &t.BytesWritten, &t.Error,
		&t.Attempt, &t.PointID, &t.SourceNanos, &t.ProxyNanos, &t.NetworkNanos, &t.TargetNanos, &warnings, &t.BytesDone)
	t.State = State(state)
	if warnings != "" {
		t.Warnings = strings.Split(warnings, "\n")
	}
	return t, err
}

// warningsArg joins warnings into the stored newline-separated text. Each
// warning is one line: line breaks inside one become spaces, and empty
// warnings are dropped, so what is stored reads back the same.
func warningsArg(ws []string) string {
	lines := make([]string, 0, len(ws))
	for _, w := range ws {
		w = strings.Join(strings.FieldsFunc(w, func(r rune) bool { return r == '\n' || r == '\r' }), " ")
		if strings.TrimSpace(w) != "" {
			lines = append(lines, w)
		}
	}
	return strings.Join(lines, "\n")
}

func checkTaskNumbers(t Task) error {
	if t.Attempt < 0 || t.BytesTotal < 0 || t.BytesRead < 0 || t.BytesTransferred < 0 || t.BytesWritten < 0 || t.BytesDone < 0 ||
		t.SourceNanos < 0 || t.ProxyNanos < 0 || t.NetworkNanos < 0 || t.TargetNanos < 0 {
		return invalid("task %d: negative attempt, byte count or stage time", t.ID)
	}
	return nil
}

// CreateTask queues a task for t.SessionID, t.VM and t.Disk (a missing
// session is ErrConflict) with t's assignment, BytesTotal, Attempt, PointID
// and Warnings; State, times, byte counters and stage times start fresh.
func (s *Store) CreateTask(ctx context.Context, t Task) (Task, error) {
	if t.VM == "" || t.Disk == "" {
		return Task{}, invalid("task needs a VM and a disk")
	}
	if err := checkTaskNumbers(t); err != nil {
		return Task{}, err
	}
	out, err := scanTask(s.queryRow(ctx, s.db, `INSERT INTO tasks (session_id, vm, disk, proxy, repository,
		transport, state, queued_at, bytes_total, attempt, point_id, warnings)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING `+taskColumns,
		t.SessionID, t.VM, t.Disk, t.Proxy, t.Repository, t.Transport, string(StateQueued), s.timestamp(),
		t.BytesTotal, t.Attempt, t.PointID, warningsArg(t.Warnings)))
	return out, s.wrap("create task", err)
}

// UpdateTask stores the assignment (proxy, repository, transport), state,
// counters, attempt, point ID, stage times, warnings and error of task t.ID.
// The first non-queued state records the start time, a terminal state the
// end time. A task put back to queued (requeued, say after its proxy
// failed) has its end time cleared and keeps its first start time, so
// Started is when work on the task first began and Ended is set only while
// the task is terminal.
func (s *Store) UpdateTask(ctx context.Context, t Task) (Task, error) {
	if !t.State.Valid() {
		return Task{}, invalid("task state %q", t.State)
	}
	if err := checkTaskNumbers(t); err != nil {
		return Task{}, err
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
		bytes_transferred = ?, bytes_written = ?, error = ?, attempt = ?, point_id = ?,
		source_ns = ?, proxy_ns = ?, network_ns = ?, target_ns = ?, warnings = ?, bytes_done = ?
		WHERE id = ? RETURNING `+taskColumns,
		t.Proxy, t.Repository, t.Transport, string(t.State), started, ended,
		t.BytesTotal, t.BytesRead, t.BytesTransferred, t.BytesWritten, t.Error, t.Attempt, t.PointID,
		t.SourceNanos, t.ProxyNanos, t.NetworkNanos, t.TargetNanos, warningsArg(t.Warnings), t.BytesDone, t.ID))
	if err == nil && t.State.Terminal() && s.observer != nil {
		s.observer.TaskEnded(out)
	}
	return out, s.wrap("update task "+strconv.FormatInt(t.ID, 10), err)
}

// GetTask returns task id.
func (s *Store) GetTask(ctx context.Context, id int64) (Task, error) {
	t, err := scanTask(s.queryRow(ctx, s.db, "SELECT "+taskColumns+" FROM tasks WHERE id = ?", id))
	return t, s.wrap("task "+strconv.FormatInt(id, 10), err)
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

// FailUnfinished is restart recovery: in one transaction every task in
// state queued or running (of any session but those in keep, the sessions
// the server runs again) becomes failed, ended now, with error reason
// unless it already has one; and every such session in state queued or
// running becomes failed, ended now, keeping its result JSON or else
// getting {"error": reason}. It returns how many sessions it failed.
func (s *Store) FailUnfinished(ctx context.Context, reason string, keep ...int64) (sessions int64, err error) {
	if strings.TrimSpace(reason) == "" {
		return 0, invalid("restart recovery needs a reason")
	}
	result, err := json.Marshal(map[string]string{"error": reason})
	if err != nil {
		return 0, err
	}
	now := s.timestamp()
	unfinished := []any{string(StateQueued), string(StateRunning)}
	except, exceptArgs := "", []any{}
	if len(keep) > 0 {
		except = " AND session_id NOT IN (?" + strings.Repeat(", ?", len(keep)-1) + ")"
		for _, id := range keep {
			exceptArgs = append(exceptArgs, id)
		}
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		args := append(append([]any{string(StateFailed), now, reason}, unfinished...), exceptArgs...)
		_, err := s.exec(ctx, tx, `UPDATE tasks SET state = ?, ended_at = ?,
			error = CASE WHEN error = '' THEN ? ELSE error END WHERE state IN (?, ?)`+except, args...)
		if err != nil {
			return err
		}
		args = append(append([]any{string(StateFailed), now, string(result)}, unfinished...), exceptArgs...)
		res, err := s.exec(ctx, tx, `UPDATE sessions SET state = ?, ended_at = ?, result = COALESCE(result, ?)
			WHERE state IN (?, ?)`+strings.Replace(except, "session_id", "id", 1), args...)
		if err != nil {
			return err
		}
		sessions, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, s.wrap("fail unfinished sessions", err)
	}
	return sessions, nil
}
