package configdb

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// Job is a configured backup (or other) job.
type Job struct {
	ID         int64
	Name       string // unique
	Kind       string // "backup" when empty
	Definition json.RawMessage
	Schedule   string // "" for manual runs only
	Enabled    bool
	Created    time.Time
	Updated    time.Time
}

const jobColumns = `id, name, kind, definition, schedule, enabled, created_at, updated_at`

func scanJob(sc interface{ Scan(...any) error }) (Job, error) {
	var j Job
	err := sc.Scan(&j.ID, &j.Name, &j.Kind, jsonCol{&j.Definition}, &j.Schedule, &j.Enabled,
		timeCol{&j.Created}, timeCol{&j.Updated})
	return j, err
}

func checkJob(j *Job) (string, error) {
	if strings.TrimSpace(j.Name) == "" {
		return "", invalid("job name is empty")
	}
	if j.Kind == "" {
		j.Kind = "backup"
	}
	def, err := jsonArg("job definition", j.Definition, nil)
	if err != nil {
		return "", err
	}
	if def == nil {
		return "", invalid("job %q has no definition", j.Name)
	}
	return def.(string), nil
}

// CreateJob stores a new job; a name in use is ErrConflict.
func (s *Store) CreateJob(ctx context.Context, j Job) (Job, error) {
	def, err := checkJob(&j)
	if err != nil {
		return Job{}, err
	}
	now := s.timestamp()
	out, err := scanJob(s.queryRow(ctx, s.db, `INSERT INTO jobs (name, kind, definition, schedule, enabled, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING `+jobColumns,
		j.Name, j.Kind, def, j.Schedule, j.Enabled, now, now))
	return out, s.wrapNamed("create job "+j.Name, j.Name, err)
}

// GetJob returns the job called name.
func (s *Store) GetJob(ctx context.Context, name string) (Job, error) {
	j, err := scanJob(s.queryRow(ctx, s.db, "SELECT "+jobColumns+" FROM jobs WHERE name = ?", name))
	return j, s.wrap("job "+name, err)
}

// ListJobs lists the jobs by name.
func (s *Store) ListJobs(ctx context.Context) ([]Job, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+jobColumns+" FROM jobs ORDER BY name")
	if err != nil {
		return nil, s.wrap("list jobs", err)
	}
	defer rows.Close()
	var out []Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, s.wrap("list jobs", err)
		}
		out = append(out, j)
	}
	return out, s.wrap("list jobs", rows.Err())
}

// UpdateJob replaces the name, kind, definition, schedule and enabled flag
// of the job with j.ID; renaming onto another job's name is ErrConflict.
func (s *Store) UpdateJob(ctx context.Context, j Job) (Job, error) {
	def, err := checkJob(&j)
	if err != nil {
		return Job{}, err
	}
	out, err := scanJob(s.queryRow(ctx, s.db, `UPDATE jobs SET name = ?, kind = ?, definition = ?, schedule = ?,
		enabled = ?, updated_at = ? WHERE id = ? RETURNING `+jobColumns,
		j.Name, j.Kind, def, j.Schedule, j.Enabled, s.timestamp(), j.ID))
	return out, s.wrapNamed("update job "+j.Name, j.Name, err)
}

// DeleteJob deletes the job called name; its sessions stay, unlinked.
func (s *Store) DeleteJob(ctx context.Context, name string) error {
	return s.execOne(ctx, "delete job "+name, "DELETE FROM jobs WHERE name = ?", name)
}
