package configdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"
)

// The dashboard's reads (GET /api/v1/dashboard): each is one indexed query
// whose answer is bounded by what the dashboard shows (a day of session
// starts, the newest point per job and VM, the running sessions), never a
// scan of every point into memory. The dashboard migration adds their indexes.

// SessionStart is a session's state and start time.
type SessionStart struct {
	State   State
	Started time.Time
}

// SessionStarts lists the state and start of the sessions (any kind)
// started from since to until, both included (index sessions_started).
func (s *Store) SessionStarts(ctx context.Context, since, until time.Time) ([]SessionStart, error) {
	rows, err := s.query(ctx, s.db, `SELECT state, started_at FROM sessions
		WHERE started_at >= ? AND started_at <= ? ORDER BY started_at`, since, until)
	return collect(s, "session starts", rows, err, func(sc *sql.Rows) (SessionStart, error) {
		var st SessionStart
		var state string
		err := sc.Scan(&state, timeCol{&st.Started})
		st.State = State(state)
		return st, err
	})
}

// ActiveSessionTasks returns the queued and running sessions, newest
// first (at most most; 0: 100), and the tasks of each by session ID, in
// two queries (index sessions_state, tasks_session).
func (s *Store) ActiveSessionTasks(ctx context.Context, most int) ([]Session, map[int64][]Task, error) {
	n := limit(most)
	active := "SELECT id FROM sessions WHERE state IN (?, ?) ORDER BY id DESC LIMIT ?"
	rows, err := s.query(ctx, s.db, "SELECT "+sessionColumns+" FROM sessions WHERE id IN ("+active+") ORDER BY id DESC",
		string(StateQueued), string(StateRunning), n)
	sessions, err := collect(s, "active sessions", rows, err, func(sc *sql.Rows) (Session, error) { return scanSession(sc) })
	if err != nil || len(sessions) == 0 {
		return sessions, map[int64][]Task{}, err
	}
	rows, err = s.query(ctx, s.db, "SELECT "+taskColumns+" FROM tasks WHERE session_id IN ("+active+") ORDER BY session_id, id",
		string(StateQueued), string(StateRunning), n)
	tasks, err := collect(s, "active session tasks", rows, err, func(sc *sql.Rows) (Task, error) { return scanTask(sc) })
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[int64][]Task, len(sessions))
	for _, t := range tasks {
		byID[t.SessionID] = append(byID[t.SessionID], t)
	}
	return sessions, byID, nil
}

// VMPoint is the newest good point of a VM made by a job.
type VMPoint struct {
	Job     string
	VM      string
	Created time.Time
}

// NewestGoodPoints returns, per job and VM, when the newest point the job
// made of the VM was created; a point a malware scan found infected is not
// good and does not count. One row per (job, VM), by job and VM, from the
// table newest_points the store keeps (refreshNewest).
func (s *Store) NewestGoodPoints(ctx context.Context) ([]VMPoint, error) {
	rows, err := s.query(ctx, s.db, `SELECT job_name, vm, created_at FROM newest_points ORDER BY job_name, vm`)
	return collect(s, "newest points", rows, err, func(sc *sql.Rows) (VMPoint, error) {
		var p VMPoint
		err := sc.Scan(&p.Job, &p.VM, timeCol{&p.Created})
		return p, err
	})
}

// refreshNewest recomputes the newest good point of (job, vm) after one of
// its points was recorded, scanned or deleted (index points_job_vm).
func (s *Store) refreshNewest(ctx context.Context, job, vm string) error {
	if job == "" {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO newest_points (job_name, vm, created_at)
			SELECT job_name, vm, MAX(created_at) FROM points WHERE job_name = ? AND vm = ? AND scan_result <> 'infected'
			GROUP BY job_name, vm
			ON CONFLICT (job_name, vm) DO UPDATE SET created_at = excluded.created_at`, job, vm)
		if err != nil {
			return s.wrap("newest point of "+vm, err)
		}
		_, err = s.exec(ctx, tx, `DELETE FROM newest_points WHERE job_name = ? AND vm = ? AND NOT EXISTS (
			SELECT 1 FROM points WHERE job_name = ? AND vm = ? AND scan_result <> 'infected')`, job, vm, job, vm)
		return s.wrap("newest point of "+vm, err)
	})
}

// pointOwner returns the job and VM of the point (repository, id); "" if
// unknown.
func (s *Store) pointOwner(ctx context.Context, repository, id string) (job, vm string) {
	_ = s.queryRow(ctx, s.db, "SELECT job_name, vm FROM points WHERE repository = ? AND id = ?", repository, id).Scan(&job, &vm)
	return job, vm
}

// StorageStatus is what a repository agent reports of the file system
// holding its repository (its heartbeat capability "storage",
// repoagent.StorageStatus).
type StorageStatus struct {
	SizeBytes int64  `json:"filesystem_size_bytes"`
	FreeBytes int64  `json:"filesystem_free_bytes"`
	Error     string `json:"error,omitempty"`
}

// Storage returns the storage capability the agent last announced; false
// if it announced none (a proxy, an older agent).
func (a Agent) Storage() (StorageStatus, bool) {
	var caps struct {
		Storage *StorageStatus `json:"storage"`
	}
	if json.Unmarshal(a.Capabilities, &caps) != nil || caps.Storage == nil {
		return StorageStatus{}, false
	}
	return *caps.Storage, true
}

// sampleDay is the layout of repository_samples.day.
const sampleDay = "2006-01-02"

// RecordRepositorySample keeps the capacity a repository agent reported
// now as its sample of the day (UTC), replacing an earlier one of the
// same day.
func (s *Store) RecordRepositorySample(ctx context.Context, repository string, st StorageStatus) error {
	if st.SizeBytes <= 0 || st.FreeBytes < 0 {
		return invalid("repository %s: capacity sample of %d bytes, %d free", repository, st.SizeBytes, st.FreeBytes)
	}
	now := s.timestamp()
	_, err := s.exec(ctx, s.db, `INSERT INTO repository_samples (repository, day, size_bytes, free_bytes, sampled_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (repository, day) DO UPDATE SET size_bytes = excluded.size_bytes,
		free_bytes = excluded.free_bytes, sampled_at = excluded.sampled_at`,
		repository, now.Format(sampleDay), st.SizeBytes, st.FreeBytes, now)
	return s.wrap("record capacity of repository "+repository, err)
}

// RepositorySample is a repository's capacity on a day.
type RepositorySample struct {
	Repository string
	Day        string // YYYY-MM-DD, UTC
	SizeBytes  int64
	FreeBytes  int64
}

// RepositorySamples lists the samples of every repository from the UTC
// day of since on, by repository and day.
func (s *Store) RepositorySamples(ctx context.Context, since time.Time) ([]RepositorySample, error) {
	rows, err := s.query(ctx, s.db, `SELECT repository, day, size_bytes, free_bytes FROM repository_samples
		WHERE day >= ? ORDER BY repository, day`, since.UTC().Format(sampleDay))
	return collect(s, "repository samples", rows, err, func(sc *sql.Rows) (RepositorySample, error) {
		var r RepositorySample
		err := sc.Scan(&r.Repository, &r.Day, &r.SizeBytes, &r.FreeBytes)
		return r, err
	})
}

// collect scans every row of a query with scan; err is the query's.
func collect[T any](s *Store, op string, rows *sql.Rows, err error, scan func(*sql.Rows) (T, error)) ([]T, error) {
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, v)
	}
	return out, s.wrap(op, rows.Err())
}
