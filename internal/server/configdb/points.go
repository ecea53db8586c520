package configdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Point is a restore point the server committed to a repository. A point is
// identified by (Repository, ID): the ID is the repository's own, so two
// repositories may, in principle, hold points with the same ID.
type Point struct {
	ID          string // the repository's point ID
	Repository  string // name of the repository agent holding it
	VM          string
	JobName     string          // "" for a point made outside any job
	SessionID   int64           // 0: none, or the session was deleted
	Created     time.Time       // when the point was taken
	Disks       json.RawMessage // JSON array, stored as given
	BytesTotal  int64           // logical size of the disks
	BytesStored int64           // new data the point added to the repository
	Scan        PointScan       // the newest scan the server ran (SetPointScan)
}

// PointScan is a malware scan of a point; a zero Result: never scanned.
type PointScan struct {
	Engine   string
	Result   string // repo.ScanClean, ScanInfected or ScanFailed
	Findings int
	Time     time.Time
}

const pointColumns = `id, repository, vm, job_name, session_id, created_at, disks, bytes_total, bytes_stored,
	scan_engine, scan_result, scan_findings, scan_at`

func scanPoint(sc interface{ Scan(...any) error }) (Point, error) {
	var p Point
	var sessionID sql.NullInt64
	err := sc.Scan(&p.ID, &p.Repository, &p.VM, &p.JobName, &sessionID, timeCol{&p.Created},
		jsonCol{&p.Disks}, &p.BytesTotal, &p.BytesStored, &p.Scan.Engine, &p.Scan.Result, &p.Scan.Findings, timeCol{&p.Scan.Time})
	p.SessionID = sessionID.Int64
	return p, err
}

// RecordPoint records a committed restore point and returns the stored row.
// A zero Created is the store's current time; empty Disks is []; SessionID 0
// is none (a missing session is ErrConflict). Recording is idempotent: if
// (Repository, ID) is already recorded, nothing changes and the stored row
// is returned, even if p differs from it.
func (s *Store) RecordPoint(ctx context.Context, p Point) (Point, error) {
	if strings.TrimSpace(p.ID) == "" || strings.TrimSpace(p.Repository) == "" || strings.TrimSpace(p.VM) == "" {
		return Point{}, invalid("point needs an ID, a repository and a VM (got %q, %q, %q)", p.ID, p.Repository, p.VM)
	}
	if p.BytesTotal < 0 || p.BytesStored < 0 {
		return Point{}, invalid("point %s: negative byte counts", p.ID)
	}
	disks, err := jsonArg("point disks", p.Disks, "[]")
	if err != nil {
		return Point{}, err
	}
	created := p.Created.UTC().Truncate(time.Microsecond)
	if p.Created.IsZero() {
		created = s.timestamp()
	}
	var sessionID any
	if p.SessionID != 0 {
		sessionID = p.SessionID
	}
	op := "record point " + p.Repository + "/" + p.ID
	res, err := s.exec(ctx, s.db, `INSERT INTO points (id, repository, vm, job_name, session_id, created_at, disks,
		bytes_total, bytes_stored) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (repository, id) DO NOTHING`,
		p.ID, p.Repository, p.VM, p.JobName, sessionID, created, disks, p.BytesTotal, p.BytesStored)
	if err != nil {
		return Point{}, s.wrap(op, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		if err := s.refreshNewest(ctx, p.JobName, p.VM); err != nil {
			return Point{}, err
		}
	}
	out, err := scanPoint(s.queryRow(ctx, s.db,
		"SELECT "+pointColumns+" FROM points WHERE repository = ? AND id = ?", p.Repository, p.ID))
	return out, s.wrap(op, err)
}

// GetPoint returns the point with the given ID. If more than one repository
// holds a point with that ID the answer is ambiguous: ErrConflict, naming
// the repositories.
func (s *Store) GetPoint(ctx context.Context, id string) (Point, error) {
	op := "point " + id
	rows, err := s.query(ctx, s.db, "SELECT "+pointColumns+" FROM points WHERE id = ? ORDER BY repository", id)
	if err != nil {
		return Point{}, s.wrap(op, err)
	}
	defer rows.Close()
	var found []Point
	for rows.Next() {
		p, err := scanPoint(rows)
		if err != nil {
			return Point{}, s.wrap(op, err)
		}
		found = append(found, p)
	}
	if err := rows.Err(); err != nil {
		return Point{}, s.wrap(op, err)
	}
	switch len(found) {
	case 0:
		return Point{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	case 1:
		return found[0], nil
	}
	repos := make([]string, len(found))
	for i, p := range found {
		repos[i] = p.Repository
	}
	return Point{}, fmt.Errorf("%s: %w: the ID is held by %d repositories (%s); name the repository",
		op, ErrConflict, len(found), strings.Join(repos, ", "))
}

// ResolvePoint finds a point by a reference a repository resolves the
// same way (repo.ResolvePoint): its ID, a unique prefix of it, "latest"
// (the newest point) or "VM:latest" (the VM's newest), with "~N" the Nth
// before the newest. Unknown: the error
// wraps ErrNotFound; a prefix of several IDs, or an ID in several
// repositories: ErrConflict (and repo.ErrAmbiguous for a prefix).
func (s *Store) ResolvePoint(ctx context.Context, ref string) (Point, error) {
	if vm, back, ok := repo.ParseLatest(ref); ok {
		ps, err := s.ListPoints(ctx, PointFilter{VM: vm, Limit: back + 1})
		if err != nil {
			return Point{}, err
		}
		if len(ps) <= back {
			return Point{}, fmt.Errorf("point %s: %w", ref, ErrNotFound)
		}
		return ps[back], nil
	}
	var ids []string
	if ref != "" {
		var err error
		if ids, err = s.pointIDs(ctx, ref); err != nil {
			return Point{}, err
		}
	}
	id, err := repo.MatchPrefix(ref, ids)
	switch {
	case errors.Is(err, repo.ErrPointNotFound):
		return Point{}, fmt.Errorf("point %s: %w", ref, ErrNotFound)
	case err != nil:
		return Point{}, fmt.Errorf("point %w (%w)", err, ErrConflict)
	}
	return s.GetPoint(ctx, id)
}

// pointIDs lists the IDs that start with prefix (an ID held by several
// repositories once).
func (s *Store) pointIDs(ctx context.Context, prefix string) ([]string, error) {
	op := "point " + prefix
	rows, err := s.query(ctx, s.db, "SELECT DISTINCT id FROM points WHERE substr(id, 1, ?) = ?", len(prefix), prefix)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap(op, err)
		}
		ids = append(ids, id)
	}
	return ids, s.wrap(op, rows.Err())
}

// PointFilter selects points; zero fields select all.
type PointFilter struct {
	VM         string
	JobName    string
	Repository string
	Limit      int // 0: 100
	// After, a page cursor, selects the points listed after it (the last
	// point of the previous page, PointCursor); nil: from the newest.
	After *PointCursor
	// Since selects points created at or after it; zero: any.
	Since time.Time
}

// ListPoints lists points, newest (by Created) first.
func (s *Store) ListPoints(ctx context.Context, f PointFilter) ([]Point, error) {
	q, args := "SELECT "+pointColumns+" FROM points WHERE 1 = 1", []any{}
	if f.VM != "" {
		q, args = q+" AND vm = ?", append(args, f.VM)
	}
	if f.JobName != "" {
		q, args = q+" AND job_name = ?", append(args, f.JobName)
	}
	if f.Repository != "" {
		q, args = q+" AND repository = ?", append(args, f.Repository)
	}
	if c := f.After; c != nil {
		q = q + " AND (created_at < ? OR (created_at = ? AND (repository < ? OR (repository = ? AND id < ?))))"
		args = append(args, c.Created, c.Created, c.Repository, c.Repository, c.ID)
	}
	if !f.Since.IsZero() {
		q, args = q+" AND created_at >= ?", append(args, f.Since)
	}
	rows, err := s.query(ctx, s.db, q+" ORDER BY created_at DESC, repository DESC, id DESC LIMIT ?",
		append(args, limit(f.Limit))...)
	if err != nil {
		return nil, s.wrap("list points", err)
	}
	defer rows.Close()
	var out []Point
	for rows.Next() {
		p, err := scanPoint(rows)
		if err != nil {
			return nil, s.wrap("list points", err)
		}
		out = append(out, p)
	}
	return out, s.wrap("list points", rows.Err())
}

// SetPointScan records the newest malware scan of the point (repository,
// id), replacing the one recorded; ErrNotFound if the point is unknown.
func (s *Store) SetPointScan(ctx context.Context, repository, id string, sc PointScan) error {
	if sc.Result == "" || sc.Engine == "" || sc.Findings < 0 {
		return invalid("point %s: a scan needs an engine, a result and a findings count", id)
	}
	at := sc.Time.UTC().Truncate(time.Microsecond)
	if sc.Time.IsZero() {
		at = s.timestamp()
	}
	err := s.execOne(ctx, "record scan of point "+repository+"/"+id,
		"UPDATE points SET scan_engine = ?, scan_result = ?, scan_findings = ?, scan_at = ? WHERE repository = ? AND id = ?",
		sc.Engine, sc.Result, sc.Findings, at, repository, id)
	if err != nil {
		return err
	}
	job, vm := s.pointOwner(ctx, repository, id)
	return s.refreshNewest(ctx, job, vm)
}

// DeletePoint forgets the point (repository, id); ErrNotFound if unknown.
func (s *Store) DeletePoint(ctx context.Context, repository, id string) error {
	job, vm := s.pointOwner(ctx, repository, id)
	if err := s.execOne(ctx, "delete point "+repository+"/"+id,
		"DELETE FROM points WHERE repository = ? AND id = ?", repository, id); err != nil {
		return err
	}
	return s.refreshNewest(ctx, job, vm)
}
