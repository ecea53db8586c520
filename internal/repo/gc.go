package repo

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// GCOptions tune garbage collection.
type GCOptions struct {
	// Grace keeps unreferenced chunks and orphaned indexes younger than
	// this; it covers clocks that disagree between hosts sharing storage.
	Grace  time.Duration
	DryRun bool
}

// GCResult counts what GC found and removed.
type GCResult struct {
	Referenced     int   `json:"referenced_chunks"`
	Removed        int   `json:"removed_chunks"`
	RemovedBytes   int64 `json:"removed_bytes"`
	Kept           int   `json:"kept_recent_unreferenced"`
	RemovedIndexes int   `json:"removed_orphan_indexes"`
	RemovedScans   int   `json:"removed_orphan_scans,omitempty"`
	RemovedLocks   int   `json:"removed_stale_locks"`
	RemovedTemp    int   `json:"removed_temp_files"`
	RemovedDirs    int   `json:"removed_empty_dirs"`
	// Locked counts what Object Lock kept (gc_lock.go).
	Locked GCLocked `json:"locked,omitzero"`
	// Warnings name damage GC worked around (a damaged manifest whose
	// indexes it marked from, a stray file under points/).
	Warnings []string `json:"warnings,omitempty"`
	// Immutable says what a hardened repository kept (Immutable).
	Immutable string `json:"immutable,omitempty"`
	// DeferredFor names the no-touch backups that kept gc from sweeping.
	DeferredFor []string `json:"deferred_for,omitempty"`
}

// referencedChunks marks every chunk a restore point may reference: from
// the indexes of every committed point and, for a point whose manifest is
// damaged, from the index files stored for it. If some point's references
// cannot be known, nothing can be swept and it fails (the error names the
// point). Stray files under points/ are not points; they only warn.
func (r *Repository) referencedChunks(ctx context.Context, res *GCResult) (*ChunkSet, map[string]bool, error) {
	ms, damaged, err := r.ScanPoints(ctx)
	if err != nil {
		return nil, nil, err
	}
	ref := &ChunkSetBuilder{}
	points := make(map[string]bool, len(ms))
	for _, m := range ms {
		points[m.ID] = true
		for d := range m.Disks {
			if err := r.WalkIndex(ctx, m, d, &Index{}, ref.addEntry); err != nil {
				return nil, nil, fmt.Errorf("gc stopped, nothing deleted: point %s disk %d: %w", m.ID, d, err)
			}
		}
	}
	// A held point whose manifest is gone (removed by a holdfast that did
	// not know holds) keeps what its indexes reference.
	holds, err := r.Holds(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("gc stopped, nothing deleted: %w", err)
	}
	for _, h := range holds {
		if points[h.Point] {
			continue
		}
		if _, err := r.be.Stat(ctx, manifestName(h.Point)); err == nil {
			continue // a damaged manifest, below
		}
		points[h.Point] = true
		if n, err := r.markStoredIndexes(ctx, h.Point, ref); err == nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("point %s has no manifest but is %v; kept every chunk its %d index file(s) reference",
				h.Point, h, n))
		}
	}
	for _, d := range damaged {
		if d.Stray {
			res.Warnings = append(res.Warnings, d.String())
			continue
		}
		points[d.ID] = true
		n, err := r.markStoredIndexes(ctx, d.ID, ref)
		if err != nil {
			return nil, nil, fmt.Errorf("gc stopped, nothing deleted: %w; its indexes cannot stand in for it: %w", d.Err, err)
		}
		res.Warnings = append(res.Warnings, fmt.Sprintf("%v; kept every chunk its %d index file(s) reference", d.Err, n))
	}
	return ref.Set(), points, nil
}

// markStoredIndexes marks the chunks of every index file stored for a
// point without a usable manifest (indexes/<id>/disk-N). The blobs are
// checked (authenticated, when encrypted, and bound to their names) but not
// against a manifest's hash. It fails when there is no index file or one
// does not load: then the point's references are unknown.
func (r *Repository) markStoredIndexes(ctx context.Context, id string, ref *ChunkSetBuilder) (int, error) {
	var names []string
	err := r.be.List(ctx, "indexes/"+id, func(fi storage.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("list indexes/%s: %w", id, err)
	}
	if len(names) == 0 {
		return 0, fmt.Errorf("indexes/%s: %w: no index files", id, ErrCorrupt)
	}
	for _, name := range names {
		b, err := r.be.Load(ctx, name)
		if err != nil {
			return 0, fmt.Errorf("load %s: %w", name, err)
		}
		plain, err := r.codec.open(b, kindIndex, []byte(name), maxMetadata, nil)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
		if _, err := walkIndex(plain, &Index{}, ref.addEntry); err != nil {
			return 0, fmt.Errorf("%s: %w", name, err)
		}
	}
	return len(names), nil
}

// GC deletes chunks no committed restore point references (mark & sweep).
//
// Safety with concurrent backups: the cut-off is the earlier of GC's start
// and the start of the oldest running backup (from the shared locks), minus
// the grace period. Backups touch every chunk they reuse and write new ones
// (setting their times after writing, see saveStamped), so anything a
// running backup references has a modification time after the cut-off and
// is kept. A candidate is first renamed aside and its time
// re-read, so a touch racing with the sweep either fails (and the backup
// stores the chunk again) or is seen, and the chunk is put back.
func (r *Repository) GC(ctx context.Context, o GCOptions) (GCResult, error) {
	var res GCResult
	lock, err := r.Lock(ctx, LockExclusive)
	if err != nil {
		return res, err
	}
	defer func() { _ = lock.Release() }()
	start := r.now()
	live, err := r.ActiveLocks(ctx)
	if err != nil {
		return res, err
	}
	cutoff := start
	for _, li := range live {
		if li.Kind == LockShared && li.Started.Before(cutoff) {
			cutoff = li.Started
		}
	}
	cutoff = cutoff.Add(-r.immutableGrace(o.Grace, start, &res))
	if held := noTouchHolders(live); len(held) > 0 {
		return res, r.gcDeferred(ctx, held, o.DryRun, &res)
	} else if !o.DryRun && r.noTouchBackend() { // chunk caches exist only there
		if err := r.newGeneration(ctx); err != nil {
			return res, err
		}
	}

	ref, points, err := r.referencedChunks(ctx, &res)
	if err != nil {
		return res, err
	}
	res.Referenced = ref.Len()
	if err := r.sweepChunks(ctx, ref, cutoff, o.DryRun, &res); err != nil {
		return res, err
	}
	if o.DryRun {
		return res, nil
	}
	if err := r.sweepIndexes(ctx, points, cutoff, &res); err != nil {
		return res, err
	}
	if err := r.sweepScans(ctx, points, &res); err != nil {
		return res, err
	}
	if res.RemovedLocks, err = r.removeStaleLocks(ctx); err != nil {
		return res, err
	}
	if l, ok := r.be.(interface {
		RemoveStaleTemp(context.Context, time.Time) (int, error)
	}); ok {
		res.RemovedTemp, _ = l.RemoveStaleTemp(ctx, cutoff)
	}
	if l, ok := r.be.(interface {
		RemoveEmptyDirs(context.Context, string) (int, error)
	}); ok {
		for _, dir := range []string{"indexes", "holds", "scans"} {
			n, _ := l.RemoveEmptyDirs(ctx, dir)
			res.RemovedDirs += n
		}
	}
	return res, r.be.Sync(ctx)
}

// stampTries bounds how often saveStamped stores a file again that GC
// moved aside before its time was set.
const stampTries = 3

// saveStamped stores a file GC sweeps by age (a chunk, an index) and then
// sets its modification time (Touch), so that the time comes from the
// clock lock start times are read from. The time a file system gives a
// write may lag that clock — Linux stamps writes with its coarse clock, up
// to a timer tick behind — so a file a backup writes just after taking its
// shared lock could look older than GC's cut-off. If GC moved the file
// aside between the save and the touch (it saw the lagging time), the
// touch finds nothing and the file is stored again.
func (r *Repository) saveStamped(ctx context.Context, name string, data []byte) error {
	if r.skipTouch() { // no gc sweeps while this no-touch lock lives
		return r.be.Save(ctx, name, data)
	}
	for try := 1; ; try++ {
		if err := r.be.Save(ctx, name, data); err != nil {
			return err
		}
		err := r.be.Touch(ctx, name)
		if err == nil || !errors.Is(err, storage.ErrNotExist) || try == stampTries {
			return err
		}
	}
}

func (r *Repository) sweepChunks(ctx context.Context, ref *ChunkSet, cutoff time.Time, dry bool, res *GCResult) error {
	var restore []storage.FileInfo
	var cands []gcCandidate // compact: a chunk listing may name millions
	err := r.listUnreferenced(ctx, ref, func(fi storage.FileInfo) error {
		base := path.Base(fi.Name)
		if strings.HasSuffix(base, ".gc") {
			// Left by an interrupted GC. A backup may have reused the
			// chunk just before it was moved aside: if a committed point
			// references it, it goes back.
			if id, err := ParseChunkID(strings.TrimSuffix(base, ".gc")); err == nil {
				if ref.Has(id) {
					restore = append(restore, fi)
					return nil
				}
			}
			cands = append(cands, newCandidate(fi))
			return nil
		}
		id, err := ParseChunkID(base)
		if err != nil {
			return nil // not ours
		}
		if ref.Has(id) {
			return nil
		}
		if !fi.ModTime.Before(cutoff) {
			res.Kept++
			return nil
		}
		cands = append(cands, newCandidate(fi))
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc: list chunks: %w", err)
	}
	for _, fi := range restore {
		if dry {
			continue
		}
		err := r.be.Rename(ctx, fi.Name, strings.TrimSuffix(fi.Name, ".gc"))
		if errors.Is(err, storage.ErrExist) {
			err = r.be.Remove(ctx, fi.Name) // stored again meanwhile
		}
		if err != nil && !errors.Is(err, storage.ErrNotExist) {
			return fmt.Errorf("gc: %w", err)
		}
	}
	for _, c := range cands {
		fi := c.info()
		if lb := r.objectLock(); lb != nil { // never a rename on a locked repository
			removed, err := r.sweepLocked(ctx, lb, fi.Name, dry, res)
			if removed {
				res.Removed++
				res.RemovedBytes += fi.Size
			}
			if err != nil {
				return fmt.Errorf("gc: %w", err)
			}
			continue
		}
		if dry {
			res.Removed++
			res.RemovedBytes += fi.Size
			continue
		}
		removed, err := r.removeChunk(ctx, fi, cutoff)
		if err != nil {
			return err
		}
		if removed {
			res.Removed++
			res.RemovedBytes += fi.Size
		} else {
			res.Kept++
		}
	}
	return nil
}

// removeChunk moves a candidate aside, re-checks its time and deletes it,
// or puts it back when a backup touched it meanwhile.
func (r *Repository) removeChunk(ctx context.Context, fi storage.FileInfo, cutoff time.Time) (bool, error) {
	aside := fi.Name
	if !strings.HasSuffix(aside, ".gc") {
		aside += ".gc"
		if err := r.be.Rename(ctx, fi.Name, aside); err != nil {
			if errors.Is(err, storage.ErrNotExist) {
				return false, nil
			}
			return false, fmt.Errorf("gc: %w", err)
		}
	}
	st, err := r.be.Stat(ctx, aside)
	if err != nil {
		return false, fmt.Errorf("gc: %w", err)
	}
	if !st.ModTime.Before(cutoff) {
		err := r.be.Rename(ctx, aside, strings.TrimSuffix(aside, ".gc"))
		if errors.Is(err, storage.ErrExist) {
			err = r.be.Remove(ctx, aside) // the backup stored it again
		}
		return false, err
	}
	return true, r.be.Remove(ctx, aside)
}

// sweepIndexes removes indexes of points that were never committed (a
// killed backup) or were forgotten, once older than the cut-off.
func (r *Repository) sweepIndexes(ctx context.Context, points map[string]bool, cutoff time.Time, res *GCResult) error {
	return r.be.List(ctx, "indexes", func(fi storage.FileInfo) error {
		id := path.Base(path.Dir(fi.Name))
		if points[id] || !fi.ModTime.Before(cutoff) {
			return nil
		}
		if _, err := r.be.Stat(ctx, manifestName(id)); err == nil {
			return nil // committed after the mark phase
		}
		return r.removeOrphanIndex(ctx, fi.Name, res)
	})
}
