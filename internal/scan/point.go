package scan

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/textsafe"
)

// Mounted is a restore point published for scanning: its mounted guest
// filesystems, the ones it could not mount, and how to unpublish it.
type Mounted struct {
	Targets   []Target
	Unmounted []string // filesystems found but not mounted (unknown type, swap)
	// Problems are what publish could not publish (a damaged partition
	// table, a volume group skipped because the host has one of its name,
	// a filesystem that did not mount): guest files there are not
	// scanned, so the scan is not clean.
	Problems []string
	Release  func(context.Context) error
}

// Mounter publishes a restore point read-only and mounts its guest
// filesystems (publish.Publish in holdfast; a plain directory in tests).
type Mounter func(ctx context.Context, m *repo.Manifest) (*Mounted, error)

// Records is where scan results are kept: *repo.Repository.
type Records interface {
	Scans(ctx context.Context, point string) (map[string][]repo.ScanRecord, []error, error)
	PutScan(ctx context.Context, s repo.ScanRecord) error
}

// Checker scans restore points with one engine, records each result on
// its point and reuses recorded ones.
type Checker struct {
	Engine  *Engine
	Mount   Mounter
	Records Records
	// Scanned, if set, is told of every point scanned (not reused).
	Scanned func(m *repo.Manifest, r Report)
}

// releaseTimeout bounds unpublishing after the command's context ended.
const releaseTimeout = 2 * time.Minute

// ScanPoint publishes m, scans its filesystems, unpublishes it (also when
// the scan fails or ctx ends) and records the result. The error is for
// what kept the scan from running or being recorded; an infected or
// failed scan is a report (Report.Err).
func (c *Checker) ScanPoint(ctx context.Context, m *repo.Manifest) (rep Report, err error) {
	mnt, err := c.Mount(ctx, m)
	if err != nil {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		rep = Report{Engine: c.Engine.name, EngineVersion: c.Engine.version, Database: c.Engine.database,
			Started: c.Engine.clock.Now(), Result: repo.ScanFailed, Error: "publish: " + textsafe.Escape(err.Error())} // may name guest LVM volumes
		return rep, c.record(ctx, m, rep)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		defer cancel()
		if rerr := mnt.Release(rctx); rerr != nil {
			err = errors.Join(err, fmt.Errorf("unpublish %s: %w", m.ID, rerr))
		}
	}()
	rep, err = c.Engine.Scan(ctx, mnt.Targets)
	if err != nil {
		return rep, err
	}
	rep.Skipped = mnt.Unmounted
	notFullyScanned(&rep, mnt.Problems)
	if c.Scanned != nil {
		c.Scanned(m, rep)
	}
	return rep, c.record(ctx, m, rep)
}

// notFullyScanned turns a clean report failed when publish could not
// publish everything (an infected one stays infected), naming what was
// left out.
func notFullyScanned(rep *Report, problems []string) {
	if len(problems) == 0 {
		return
	}
	esc := make([]string, len(problems))
	for i, p := range problems {
		esc[i] = textsafe.Escape(p) // may name guest volumes
	}
	msg := "not fully scanned: " + strings.Join(esc, "; ")
	rep.Error = strings.TrimPrefix(rep.Error+"; "+msg, "; ")
	if rep.Result == repo.ScanClean {
		rep.Result = repo.ScanFailed
	}
}

func (c *Checker) record(ctx context.Context, m *repo.Manifest, rep Report) error {
	if c.Records == nil {
		return nil
	}
	if err := c.Records.PutScan(ctx, rep.Record(m.ID)); err != nil {
		return fmt.Errorf("record the scan of %s: %w", m.ID, err)
	}
	return nil
}

// Recorded returns the newest recorded result of m by this engine with
// the same version and database, if there is one that is not failed.
func (c *Checker) Recorded(ctx context.Context, m *repo.Manifest) (repo.ScanRecord, bool, error) {
	if c.Records == nil {
		return repo.ScanRecord{}, false, nil
	}
	all, _, err := c.Records.Scans(ctx, m.ID)
	if err != nil {
		return repo.ScanRecord{}, false, err
	}
	for _, s := range all[m.ID] {
		if s.Same(c.Engine.name, c.Engine.version, c.Engine.database) && s.Result != repo.ScanFailed {
			return s, true, nil
		}
	}
	return repo.ScanRecord{}, false, nil
}

// Check answers whether m is clean (repo.ScanClean or repo.ScanInfected):
// from its record when the same engine identity already scanned it, else
// by scanning it. A scan that could not run is an error wrapping
// ErrNotScanned.
func (c *Checker) Check(ctx context.Context, m *repo.Manifest) (string, error) {
	if s, ok, err := c.Recorded(ctx, m); err != nil {
		return "", err
	} else if ok {
		return s.Result, nil
	}
	rep, err := c.ScanPoint(ctx, m)
	if err != nil {
		return "", err
	}
	if rep.Result == repo.ScanFailed {
		return "", fmt.Errorf("point %s: %w", m.ID, rep.Err())
	}
	return rep.Result, nil
}

// FindClean returns the newest of points (oldest first, one VM) that
// check finds clean, assuming an infection persists in every later point
// once present: it checks the newest, then binary-searches the older ones
// for the first infected point. The point returned was itself checked
// clean; nil when the oldest point is infected too.
func FindClean(ctx context.Context, points []*repo.Manifest, check func(context.Context, *repo.Manifest) (string, error)) (*repo.Manifest, error) {
	if len(points) == 0 {
		return nil, nil
	}
	clean := func(i int) (bool, error) {
		res, err := check(ctx, points[i])
		return res == repo.ScanClean, err
	}
	n := len(points)
	if ok, err := clean(n - 1); err != nil || ok {
		if ok {
			return points[n-1], nil
		}
		return nil, err
	}
	// points[hi] is infected; points[lo-1] (when lo > 0) was checked clean.
	lo, hi := 0, n-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		ok, err := clean(mid)
		if err != nil {
			return nil, err
		}
		if ok {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return nil, nil
	}
	return points[lo-1], nil
}
