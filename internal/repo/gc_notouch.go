package repo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/chunkcache"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// No-touch backups (docs/object-storage.md, "Cost and caching").
//
// On object storage a touch is a COPY, billed as a write: touching every
// reused chunk made an unchanged backup cost one write request per chunk.
// There a backup protects its chunks with its lock instead:
//
//   - the backup writes its shared lock, marked no-touch, then lists the
//     locks; without a live exclusive (gc) lock it neither touches reused
//     chunks nor stamps the ones it writes; with one it touches as before;
//   - gc writes its exclusive lock, then lists the locks; while a live
//     no-touch lock exists it sweeps nothing that a backup may need (no
//     chunk, no index, no temporary file) and says so; otherwise it writes
//     a new gc generation and then sweeps.
//
// Both write, then list: if the backup's list misses the gc lock, that
// list ran before the gc lock was written, so the gc's later list sees the
// backup's lock (listing is strongly consistent after a write on AWS S3,
// versitygw and local disk). Either the backup touches or the gc keeps
// everything.
//
// The gc generation also guards the chunk cache (chunkcache): a backup in
// no-touch mode reads it once after its lock check; chunk ids observed
// (listed, found by HEAD, written) while the generation stays the same are
// still stored, since no gc can sweep while the no-touch lock is live, and
// the next sweep changes the generation first.
//
// The ids observed are merged into the cache file whenever mergeIDs of
// them are held (and when the last no-touch lock ends), so a backup's
// memory for them is bounded whatever the disk's size: 4 MiB, against
// 128 MiB for a 4 TiB disk of new data at 1 MiB chunks. Each merge
// rewrites the cache file (atomically, under the same generation): at 32
// bytes per chunk, a 10 M-chunk cache costs 320 MB of local writes per
// 131 072 new chunks (32 GiB of new data at 256 KiB chunks).

// mergeIDs is how many observed chunk ids a no-touch backup holds before
// it merges them into the chunk cache (4 MiB of ids).
const mergeIDs = 4 << 20 / len(chunkcache.ID{})

// generationFile holds the gc generation: 32 hex digits, rewritten by each
// gc before it sweeps.
const generationFile = "gc-generation"

// touchBiller is implemented by backends on which Touch is a billed
// request (object storage): there backups use no-touch locks. A locked
// repository's backend (lockedBackend, Object Lock) is deliberately not
// one: its touch is a HEAD that extends a reused chunk's retention, which
// a no-touch backup would skip.
type touchBiller interface{ TouchIsBilled() bool }

// costState is a repository's no-touch bookkeeping, shared by its locks.
type costState struct {
	cacheDir string // "": no chunk cache

	mu      sync.Mutex
	noTouch int // held no-touch locks that found no gc
	touch   int // held shared locks that touch (a gc was running)
	set     *chunkcache.Set
	gen     chunkcache.Generation
	added   []chunkcache.ID // at most maxAdded, then merged into the cache
	// maxAdded is mergeIDs (tests lower it).
	maxAdded int
	// rebuildErr is why the last automatic rebuild failed (then backups
	// ask the bucket: one HEAD per chunk not cached).
	rebuildErr error
}

func newCostState(cacheDir string) *costState {
	if cacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			cacheDir = filepath.Join(d, "holdfast")
		}
	}
	return &costState{cacheDir: cacheDir, maxAdded: mergeIDs}
}

// noTouchBackend reports whether shared locks on this backend are no-touch.
func (r *Repository) noTouchBackend() bool {
	b, ok := r.be.(touchBiller)
	return ok && b.TouchIsBilled()
}

// skipTouch reports whether chunks need no touch: this repository holds a
// no-touch lock that found no gc, and no lock that found one.
func (r *Repository) skipTouch() bool {
	c := r.cost
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.noTouch > 0 && c.touch == 0
}

// startNoTouch runs after a no-touch shared lock is written: it lists the
// locks and decides the lock's mode; in no-touch mode it reads the gc
// generation and opens (or rebuilds) the chunk cache.
func (r *Repository) startNoTouch(ctx context.Context, l *Lock) error {
	live, err := r.ActiveLocks(ctx)
	if err != nil {
		return err
	}
	for _, li := range live {
		if li.Kind == LockExclusive {
			l.touching = true
		}
	}
	c := r.cost
	if l.touching {
		c.mu.Lock()
		c.touch++
		c.mu.Unlock()
		return nil
	}
	gen, err := r.readGeneration(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.noTouch++
	l.noTouch = true
	if c.noTouch > 1 {
		return nil // the generation cannot change while a no-touch lock is held
	}
	c.gen, c.added = gen, nil
	c.set = nil
	if c.cacheDir == "" {
		return nil
	}
	set, err := chunkcache.Open(r.cachePath())
	if err == nil && set.Generation() == gen {
		c.set = set
		return nil
	}
	if set != nil {
		_ = set.Close()
	}
	// Missing, damaged or from before a gc: rebuild from the bucket. The
	// listing is valid: no gc sweeps while this lock is live.
	c.rebuildErr = r.rebuildCacheLocked(ctx)
	return nil
}

// endNoTouch runs before a lock is removed: the last no-touch lock writes
// what its backups saw into the cache (while the generation still holds).
func (l *Lock) endNoTouch() {
	c := l.r.cost
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case l.touching:
		c.touch--
	case l.noTouch:
		c.noTouch--
		if c.noTouch == 0 {
			l.r.mergeAddedLocked()
			if c.set != nil {
				_ = c.set.Close()
			}
			c.set, c.added = nil, nil
		}
	}
}

func (r *Repository) cachePath() string {
	return filepath.Join(r.cost.cacheDir, r.cfg.ID, "chunks")
}

// mergeAddedLocked merges the observed ids into the cache file and opens
// the new file in place of the old (c.mu held, a no-touch lock live, so
// the generation has not changed). On failure the ids are dropped: the
// cache only misses them, and a backup asks the bucket for those.
func (r *Repository) mergeAddedLocked() {
	c := r.cost
	defer func() { c.added = c.added[:0] }()
	if len(c.added) == 0 || c.cacheDir == "" {
		return
	}
	if err := r.writeCacheLocked(c.set, c.added); err != nil {
		return // the old file stays whole and valid
	}
	set, err := chunkcache.Open(r.cachePath())
	if err != nil {
		return
	}
	// A lookup that took the old set before this may fail on its closed
	// file: hasChunk then asks the bucket, which is still right.
	if c.set != nil {
		_ = c.set.Close()
	}
	c.set = set
}

// writeCacheLocked merges add into the cache file (c.mu held).
func (r *Repository) writeCacheLocked(old *chunkcache.Set, add []chunkcache.ID) error {
	return chunkcache.Write(r.cachePath(), r.cost.gen, old, add)
}

// rebuildCacheLocked lists every chunk and writes the cache (c.mu held).
func (r *Repository) rebuildCacheLocked(ctx context.Context) error {
	var ids []chunkcache.ID
	err := r.be.List(ctx, "chunks", func(fi storage.FileInfo) error {
		if id, err := ParseChunkID(path.Base(fi.Name)); err == nil {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := r.writeCacheLocked(nil, ids); err != nil {
		return err
	}
	set, err := chunkcache.Open(r.cachePath())
	if err != nil {
		return err
	}
	r.cost.set = set
	return nil
}

// RebuildChunkCache rebuilds this host's chunk cache from the bucket alone
// (holdfast repo cache rebuild). It holds a no-touch lock while it lists;
// it fails with ErrLocked while a gc runs. It returns the chunks cached.
func (r *Repository) RebuildChunkCache(ctx context.Context) (int, error) {
	if !r.noTouchBackend() {
		return 0, errors.New("the chunk cache serves object storage only; this repository needs none")
	}
	if r.cost.cacheDir == "" {
		return 0, errors.New("no cache directory (set XDG_CACHE_HOME or HOME)")
	}
	_ = os.Remove(r.cachePath())
	l, err := r.Lock(ctx, LockShared)
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Release() }()
	if l.touching {
		return 0, fmt.Errorf("%w: a gc is running; rebuild the cache after it", ErrLocked)
	}
	c := r.cost
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == nil {
		return 0, fmt.Errorf("rebuild chunk cache: %w", c.rebuildErr)
	}
	return c.set.Len(), nil
}

// hasChunk answers TouchChunk in no-touch mode: from the cache, else
// with one Stat (HEAD), remembering what it found.
func (r *Repository) hasChunk(ctx context.Context, id ChunkID) (bool, error) {
	c := r.cost
	c.mu.Lock()
	set := c.set
	c.mu.Unlock()
	if set != nil {
		if ok, err := set.Contains(id); err == nil && ok {
			return true, nil
		}
	}
	_, err := r.be.Stat(ctx, chunkName(id))
	if errors.Is(err, storage.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("chunk %s: %w", id, err)
	}
	r.noteChunk(id)
	return true, nil
}

// noteChunk records a chunk a no-touch backup saw stored or stored itself.
func (r *Repository) noteChunk(id ChunkID) {
	c := r.cost
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.noTouch == 0 || c.touch != 0 {
		return
	}
	if len(c.added) == cap(c.added) { // grow by doubling, up to maxAdded
		grown := make([]chunkcache.ID, len(c.added), min(max(2*cap(c.added), 64), c.maxAdded))
		copy(grown, c.added)
		c.added = grown
	}
	c.added = append(c.added, id)
	if len(c.added) >= c.maxAdded {
		r.mergeAddedLocked()
	}
}

// readGeneration returns the current gc generation (zero: no gc swept).
func (r *Repository) readGeneration(ctx context.Context) (chunkcache.Generation, error) {
	var g chunkcache.Generation
	b, err := r.be.Load(ctx, generationFile)
	if errors.Is(err, storage.ErrNotExist) {
		return g, nil
	}
	if err != nil {
		return g, fmt.Errorf("read %s: %w", generationFile, err)
	}
	s := strings.TrimSpace(string(b))
	if n, err := hex.Decode(g[:], []byte(s)); err != nil || n != len(g) || len(s) != 2*len(g) {
		// A damaged generation: treat it as a new one, so no cache matches.
		_, _ = rand.Read(g[:])
	}
	return g, nil
}

// newGeneration writes a new gc generation; gc calls it before it sweeps.
func (r *Repository) newGeneration(ctx context.Context) error {
	var g chunkcache.Generation
	_, _ = rand.Read(g[:])
	if err := r.be.Save(ctx, generationFile, []byte(hex.EncodeToString(g[:])+"\n")); err != nil {
		return fmt.Errorf("gc: write %s: %w", generationFile, err)
	}
	return nil
}

// noTouchHolders lists the live no-touch backup locks among live, as gc
// reports them when it defers its sweep.
func noTouchHolders(live []LockInfo) []string {
	var out []string
	for _, li := range live {
		if li.Kind == LockShared && li.NoTouch {
			out = append(out, fmt.Sprintf("%s pid %d since %s", li.Hostname, li.PID, li.Started.Format(time.RFC3339)))
		}
	}
	return out
}

// gcDeferred is gc while no-touch backups run: it marks (to report) but
// sweeps no chunk, index or temporary file, since those backups reuse
// chunks without touching them; it still removes stale locks.
func (r *Repository) gcDeferred(ctx context.Context, held []string, dry bool, res *GCResult) error {
	ref, _, err := r.referencedChunks(ctx, res)
	if err != nil {
		return err
	}
	res.Referenced = ref.Len()
	res.DeferredFor = held
	res.Warnings = append(res.Warnings, fmt.Sprintf("nothing swept: %d backup(s) run without touching chunks (%s); run gc again after they end",
		len(held), strings.Join(held, ", ")))
	if dry {
		return nil
	}
	res.RemovedLocks, err = r.removeStaleLocks(ctx)
	return err
}
