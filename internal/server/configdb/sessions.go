package configdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"time"
)

// State is the state of a session or a task.
type State string

// States; the last four are terminal.
const (
	StateQueued    State = "queued"
	StateRunning   State = "running"
	StateSuccess   State = "success"
	StateWarning   State = "warning"
	StateFailed    State = "failed"
	StateCancelled State = "cancelled"
)

// Valid reports whether st is a known state.
func (st State) Valid() bool {
	switch st {
	case StateQueued, StateRunning, StateSuccess, StateWarning, StateFailed, StateCancelled:
		return true
	}
	return false
}

// Terminal reports whether st is final.
func (st State) Terminal() bool {
	return st == StateSuccess || st == StateWarning || st == StateFailed || st == StateCancelled
}

// Session is one run of a job, or an ad-hoc operation (JobID 0).
type Session struct {
	ID      int64
	JobID   int64  // 0: no job, or the job was deleted
	JobName string // kept when the job is deleted
	Kind    string // backup, restore, instant-recovery …
	State   State
	Started time.Time
	Ended   time.Time // zero while not terminal
	Result  json.RawMessage
}

const sessionColumns = `id, job_id, job_name, kind, state, started_at, ended_at, result`

func scanSession(sc interface{ Scan(...any) error }) (Session, error) {
	var se Session
	var jobID sql.NullInt64
	var state string
	err := sc.Scan(&se.ID, &jobID, &se.JobName, &se.Kind, &state, timeCol{&se.Started}, timeCol{&se.Ended},
		jsonCol{&se.Result})
	se.JobID, se.State = jobID.Int64, State(state)
	return se, err
}

// CreateSession starts a running session of kind for the job called jobName
// ("" for an operation outside any job; an unknown job is ErrNotFound).
func (s *Store) CreateSession(ctx context.Context, jobName, kind string) (Session, error) {
	if kind == "" {
		return Session{}, invalid("session kind is empty")
	}
	var jobID any
	if jobName != "" {
		var id int64
		err := s.queryRow(ctx, s.db, "SELECT id FROM jobs WHERE name = ?", jobName).Scan(&id)
		if err != nil {
			return Session{}, s.wrap("session for job "+jobName, err)
		}
		jobID = id
	}
	se, err := scanSession(s.queryRow(ctx, s.db, `INSERT INTO sessions (job_id, job_name, kind, state, started_at)
		VALUES (?, ?, ?, ?, ?) RETURNING `+sessionColumns, jobID, jobName, kind, string(StateRunning), s.timestamp()))
	return se, s.wrap("create session", err)
}

// UpdateSession sets the state and result (nil keeps the stored one) of
// session id; a terminal state also records the end time.
func (s *Store) UpdateSession(ctx context.Context, id int64, st State, result json.RawMessage) (Session, error) {
	if !st.Valid() {
		return Session{}, invalid("session state %q", st)
	}
	res, err := jsonArg("session result", result, nil)
	if err != nil {
		return Session{}, err
	}
	var ended *time.Time
	if st.Terminal() {
		ended = optTime(s.timestamp())
	}
	se, err := scanSession(s.queryRow(ctx, s.db, `UPDATE sessions SET state = ?, ended_at = ?,
		result = COALESCE(?, result) WHERE id = ? RETURNING `+sessionColumns, string(st), ended, res, id))
	if err == nil && st.Terminal() && s.observer != nil {
		s.observer.SessionEnded(se)
	}
	return se, s.wrap("update session "+strconv.FormatInt(id, 10), err)
}

// GetSession returns session id.
func (s *Store) GetSession(ctx context.Context, id int64) (Session, error) {
	se, err := scanSession(s.queryRow(ctx, s.db, "SELECT "+sessionColumns+" FROM sessions WHERE id = ?", id))
	return se, s.wrap("session "+strconv.FormatInt(id, 10), err)
}

// SessionFilter selects sessions; zero fields select all.
type SessionFilter struct {
	JobName string
	Kind    string // "": any (a job's runs are of its kind; restores and mounts of its points are not)
	State   State
	Limit   int // 0: 100
	// Before, a page cursor, selects sessions with a smaller ID (the last
	// ID of the previous page); 0: from the newest.
	Before int64
	// Since selects sessions started at or after it; zero: any.
	Since time.Time
}

// ListSessions lists sessions, newest first.
func (s *Store) ListSessions(ctx context.Context, f SessionFilter) ([]Session, error) {
	q, args := "SELECT "+sessionColumns+" FROM sessions WHERE 1 = 1", []any{}
	if f.JobName != "" {
		q, args = q+" AND job_name = ?", append(args, f.JobName)
	}
	if f.Kind != "" {
		q, args = q+" AND kind = ?", append(args, f.Kind)
	}
	if f.State != "" {
		q, args = q+" AND state = ?", append(args, string(f.State))
	}
	if f.Before > 0 {
		q, args = q+" AND id < ?", append(args, f.Before)
	}
	if !f.Since.IsZero() {
		q, args = q+" AND started_at >= ?", append(args, f.Since)
	}
	rows, err := s.query(ctx, s.db, q+" ORDER BY id DESC LIMIT ?", append(args, limit(f.Limit))...)
	if err != nil {
		return nil, s.wrap("list sessions", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			return nil, s.wrap("list sessions", err)
		}
		out = append(out, se)
	}
	return out, s.wrap("list sessions", rows.Err())
}

// DeleteSessionsBefore deletes terminal sessions (and their tasks) that ended
// before cutoff, for history retention, and returns how many.
func (s *Store) DeleteSessionsBefore(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.exec(ctx, s.db, "DELETE FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?", cutoff)
	if err != nil {
		return 0, s.wrap("delete old sessions", err)
	}
	return res.RowsAffected()
}

func limit(n int) int {
	if n <= 0 {
		return 100
	}
	return n
}
