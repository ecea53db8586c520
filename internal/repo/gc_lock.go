package repo

import (
	"context"
	"errors"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// GCLocked counts what GC kept because Object Lock still holds it.
type GCLocked struct {
	// Kept is the number of unreferenced files (chunks, orphan indexes)
	// kept because their retention has not ended.
	Kept int `json:"kept_locked,omitempty"`
	// Until is when the last of their retentions ends: a gc after it can
	// free them.
	Until time.Time `json:"locked_until,omitzero"`
}

func (g *GCLocked) add(until time.Time) {
	g.Kept++
	if until.After(g.Until) {
		g.Until = until
	}
}

// sweepLocked handles an unreferenced file of a repository with Object
// Lock: kept (and counted in res.Locked) while its retention holds, else
// removed with every version. The server refuses to delete a locked
// version, so a backup that extends the file's retention meanwhile (it
// reuses the chunk) always wins: the removal is refused and the file kept.
// It reports whether the file was removed (or, dry, would be).
func (r *Repository) sweepLocked(ctx context.Context, lb *lockedBackend, name string, dry bool, res *GCResult) (bool, error) {
	ret, err := lb.lk.Retention(ctx, name)
	if errors.Is(err, storage.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if ret.Locked(r.now()) {
		res.Locked.add(ret.Until)
		return false, nil
	}
	if dry {
		return true, nil
	}
	err = lb.Remove(ctx, name)
	if errors.Is(err, storage.ErrRetention) {
		if ret, rerr := lb.lk.Retention(ctx, name); rerr == nil {
			res.Locked.add(ret.Until)
		} else {
			res.Locked.Kept++
		}
		return false, nil
	}
	return err == nil, err
}

// removeOrphanIndex removes an orphan index file; under Object Lock one
// still locked is kept and counted.
func (r *Repository) removeOrphanIndex(ctx context.Context, name string, res *GCResult) error {
	lb := r.objectLock()
	if lb == nil {
		res.RemovedIndexes++
		return r.be.Remove(ctx, name)
	}
	removed, err := r.sweepLocked(ctx, lb, name, false, res)
	if removed {
		res.RemovedIndexes++
	}
	return err
}
