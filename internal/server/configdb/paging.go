package configdb

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// PointCursor is the position of a point in ListPoints' order (newest
// first, then by repository and ID, descending): a page of points starts
// after the last point of the previous one.
type PointCursor struct {
	Created    time.Time
	Repository string
	ID         string
}

// Cursor is p's position.
func (p Point) Cursor() PointCursor {
	return PointCursor{Created: p.Created, Repository: p.Repository, ID: p.ID}
}

// String encodes the cursor for a URL (ParsePointCursor reads it).
func (c PointCursor) String() string {
	raw := c.Created.UTC().Format(time.RFC3339Nano) + "\n" + c.Repository + "\n" + c.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParsePointCursor reads a cursor PointCursor.String made; anything else
// is ErrInvalid.
func ParsePointCursor(s string) (PointCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.Split(string(raw), "\n")
	if err != nil || len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return PointCursor{}, invalid("point cursor %q: not one this server made", s)
	}
	t, err := time.Parse(time.RFC3339Nano, parts[0])
	if err != nil {
		return PointCursor{}, invalid("point cursor %q: not one this server made", s)
	}
	return PointCursor{Created: t.UTC(), Repository: parts[1], ID: parts[2]}, nil
}

// JobRun is a job and its newest run (a session of the job's kind; nil:
// none kept).
type JobRun struct {
	Job  Job
	Last *Session
}

// ListJobRuns lists the jobs by name after the name after ("": from the
// first), at most n (0: all), each with its newest run, in one query
// (index sessions_job_kind_id) instead of one per job.
func (s *Store) ListJobRuns(ctx context.Context, after string, n int) ([]JobRun, error) {
	q := `SELECT j.id, j.name, j.kind, j.definition, j.schedule, j.enabled, j.created_at, j.updated_at,
		s.id, s.job_id, s.job_name, s.kind, s.state, s.started_at, s.ended_at
		FROM jobs j LEFT JOIN sessions s ON s.id = (SELECT MAX(s2.id) FROM sessions s2
			WHERE s2.job_name = j.name AND s2.kind = j.kind)
		WHERE j.name > ? ORDER BY j.name`
	args := []any{after}
	if n > 0 {
		q, args = q+" LIMIT ?", append(args, n)
	}
	rows, err := s.query(ctx, s.db, q, args...)
	return collect(s, "list jobs", rows, err, func(sc *sql.Rows) (JobRun, error) {
		var jr JobRun
		j := &jr.Job
		var id, jobID sql.NullInt64
		var name, kind, state sql.NullString
		var se Session
		err := sc.Scan(&j.ID, &j.Name, &j.Kind, jsonCol{&j.Definition}, &j.Schedule, &j.Enabled,
			timeCol{&j.Created}, timeCol{&j.Updated},
			&id, &jobID, &name, &kind, &state, timeCol{&se.Started}, timeCol{&se.Ended})
		if err != nil {
			return jr, fmt.Errorf("scan job run: %w", err)
		}
		if id.Valid {
			se.ID, se.JobID, se.JobName, se.Kind, se.State = id.Int64, jobID.Int64, name.String, kind.String, State(state.String)
			jr.Last = &se
		}
		return jr, nil
	})
}
