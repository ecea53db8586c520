package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// ErrPointLocked means a restore point's manifest or indexes are still
// under their Object Lock retention: the point cannot be removed yet.
var ErrPointLocked = errors.New("restore point is under Object Lock")

// PointLockedUntil returns when the last retention of the point's manifest
// and indexes ends, or the zero time when none holds any more (or the
// repository has no Object Lock).
func (r *Repository) PointLockedUntil(ctx context.Context, m *Manifest) (time.Time, error) {
	lb := r.objectLock()
	if lb == nil {
		return time.Time{}, nil
	}
	names := []string{manifestName(m.ID)}
	for i := range m.Disks {
		names = append(names, indexName(m.ID, i))
	}
	now := r.now()
	var until time.Time
	for _, name := range names {
		ret, err := lb.lk.Retention(ctx, name)
		if errors.Is(err, storage.ErrNotExist) {
			continue
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("point %s: %w", m.ID, err)
		}
		if ret.Locked(now) && ret.Until.After(until) {
			until = ret.Until
		}
	}
	return until, nil
}

// checkPointLock refuses to remove a point that is still locked.
func (r *Repository) checkPointLock(ctx context.Context, m *Manifest) error {
	until, err := r.PointLockedUntil(ctx, m)
	if err != nil {
		return err
	}
	if !until.IsZero() {
		return fmt.Errorf("point %s: %w until %s", m.ID, ErrPointLocked, until.UTC().Format(time.RFC3339))
	}
	return nil
}
