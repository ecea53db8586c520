package repo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/chunkcache"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// billedBackend is a local backend that says Touch is billed (as S3 does)
// and counts the requests the no-touch path is meant to avoid.
type billedBackend struct {
	storage.Backend
	touches, stats, lists, manifestLoads atomic.Int64
}

func (b *billedBackend) Load(ctx context.Context, name string) ([]byte, error) {
	if strings.HasPrefix(name, "points/") {
		b.manifestLoads.Add(1)
	}
	return b.Backend.Load(ctx, name)
}

func (b *billedBackend) TouchIsBilled() bool { return true }

func (b *billedBackend) Touch(ctx context.Context, name string) error {
	b.touches.Add(1)
	return b.Backend.Touch(ctx, name)
}

func (b *billedBackend) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	b.stats.Add(1)
	return b.Backend.Stat(ctx, name)
}

func (b *billedBackend) List(ctx context.Context, dir string, fn func(storage.FileInfo) error) error {
	if dir == "chunks" {
		b.lists.Add(1)
	}
	return b.Backend.List(ctx, dir, fn)
}

func (b *billedBackend) reset() {
	b.touches.Store(0)
	b.stats.Store(0)
	b.lists.Store(0)
	b.manifestLoads.Store(0)
}

// newBilledRepo is a repository on a billed local backend with its chunk
// cache in a temporary directory.
func newBilledRepo(t *testing.T) (*Repository, *billedBackend, *storage.Local) {
	t.Helper()
	_, local := newTestRepo(t, true)
	bb := &billedBackend{Backend: local}
	r, err := Open(context.Background(), bb, []byte("secret"), Options{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, bb, local
}

func mustLock(t *testing.T, r *Repository, kind string) *Lock {
	t.Helper()
	l, err := r.Lock(context.Background(), kind)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func mustHave(t *testing.T, r *Repository, id ChunkID, want bool) {
	t.Helper()
	ok, err := r.TouchChunk(context.Background(), id)
	if err != nil || ok != want {
		t.Fatalf("TouchChunk = %v, %v; want %v", ok, err, want)
	}
}

// TestNoTouchBackup: on a billed backend a backup that finds no gc neither
// touches reused chunks nor stamps new ones; the cache answers for the
// chunks it knows, one Stat for the others.
func TestNoTouchBackup(t *testing.T) {
	ctx := context.Background()
	r, bb, _ := newBilledRepo(t)
	a := putTestChunk(t, r, chunkData(1, 1000)) // before any lock: stamped as always
	bb.reset()
	l := mustLock(t, r, LockShared)
	if !l.Info.NoTouch || !l.noTouch {
		t.Fatalf("lock %+v is not no-touch", l.Info)
	}
	if bb.lists.Load() != 1 {
		t.Errorf("%d chunk listings to build the missing cache, want 1", bb.lists.Load())
	}
	mustHave(t, r, a, true)
	b := chunkData(2, 1000)
	bid := r.NewHasher().Sum(b)
	mustHave(t, r, bid, false)
	if _, err := r.PutChunk(ctx, bid, b); err != nil {
		t.Fatal(err)
	}
	if n := bb.touches.Load(); n != 0 {
		t.Errorf("%d touches in a no-touch backup", n)
	}
	if n := bb.stats.Load(); n != 1 {
		t.Errorf("%d Stats, want 1 (the chunk the cache did not know)", n)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	// The next backup knows both from the cache: no listing, no Stat.
	bb.reset()
	l = mustLock(t, r, LockShared)
	mustHave(t, r, a, true)
	mustHave(t, r, bid, true)
	if bb.lists.Load()+bb.stats.Load()+bb.touches.Load() != 0 {
		t.Errorf("cached backup made %d lists, %d stats, %d touches", bb.lists.Load(), bb.stats.Load(), bb.touches.Load())
	}
	_ = l.Release()
}

// TestNoTouchLockFindsGC: a backup that starts while a gc holds its lock
// touches as before.
func TestNoTouchLockFindsGC(t *testing.T) {
	r, bb, _ := newBilledRepo(t)
	a := putTestChunk(t, r, chunkData(1, 1000))
	gc := mustLock(t, r, LockExclusive)
	l := mustLock(t, r, LockShared)
	if !l.touching || r.skipTouch() {
		t.Fatal("a backup that found a gc does not touch")
	}
	bb.reset()
	mustHave(t, r, a, true)
	if bb.touches.Load() != 1 {
		t.Errorf("%d touches, want 1", bb.touches.Load())
	}
	_ = l.Release()
	_ = gc.Release()
}

// TestGCDefersForNoTouchBackup: gc sweeps nothing while a no-touch backup
// runs, and sweeps once it ended.
func TestGCDefersForNoTouchBackup(t *testing.T) {
	ctx := context.Background()
	r, _, local := newBilledRepo(t)
	old := putTestChunk(t, r, chunkData(1, 1000))
	setMtime(t, local, chunkName(old), time.Now().Add(-48*time.Hour))
	l := mustLock(t, r, LockShared)
	res, err := r.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !exists(t, local, chunkName(old)) || len(res.DeferredFor) != 1 || res.Removed != 0 {
		t.Fatalf("gc during a no-touch backup: %+v", res)
	}
	if _, err := local.Stat(ctx, generationFile); err == nil {
		t.Error("a deferred gc wrote a new generation")
	}
	_ = l.Release()
	res, err = r.GC(ctx, GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if exists(t, local, chunkName(old)) || res.Removed != 1 || len(res.DeferredFor) != 0 {
		t.Fatalf("gc after the backup: %+v", res)
	}
}

// TestCacheStaleAfterGC: a chunk the cache knows but a gc removed is not
// taken as stored: the gc changed the generation, so the cache is rebuilt.
func TestCacheStaleAfterGC(t *testing.T) {
	ctx := context.Background()
	r, bb, local := newBilledRepo(t)
	l := mustLock(t, r, LockShared)
	old := putTestChunk(t, r, chunkData(1, 1000))
	_ = l.Release() // the cache now holds old
	setMtime(t, local, chunkName(old), time.Now().Add(-48*time.Hour))
	if res, err := r.GC(ctx, GCOptions{}); err != nil || res.Removed != 1 {
		t.Fatalf("gc: %+v %v", res, err)
	}
	bb.reset()
	l = mustLock(t, r, LockShared)
	defer func() { _ = l.Release() }()
	if bb.lists.Load() != 1 {
		t.Errorf("stale cache not rebuilt (%d listings)", bb.lists.Load())
	}
	mustHave(t, r, old, false)
}

// TestCacheRebuilt: a deleted or corrupt cache is rebuilt from the bucket
// when a backup starts, and by RebuildChunkCache.
func TestCacheRebuilt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(path string) error
	}{
		{"deleted", os.Remove},
		{"corrupt", func(p string) error { return os.WriteFile(p, []byte("HFCHUNK1 garbage"), 0o600) }},
		{"truncated", func(p string) error { return os.Truncate(p, 40) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, bb, _ := newBilledRepo(t)
			a := putTestChunk(t, r, chunkData(1, 1000))
			l := mustLock(t, r, LockShared) // builds the cache
			_ = l.Release()
			if err := tc.spoil(r.cachePath()); err != nil {
				t.Fatal(err)
			}
			bb.reset()
			l = mustLock(t, r, LockShared)
			mustHave(t, r, a, true)
			_ = l.Release()
			if bb.lists.Load() != 1 || bb.stats.Load() != 0 {
				t.Errorf("%d listings, %d stats; want the cache rebuilt by one listing", bb.lists.Load(), bb.stats.Load())
			}
			if set, err := chunkcache.Open(r.cachePath()); err != nil || set.Len() != 1 {
				t.Errorf("cache after rebuild: %v", err)
			} else {
				_ = set.Close()
			}
			if err := tc.spoil(r.cachePath()); err != nil {
				t.Fatal(err)
			}
			if n, err := r.RebuildChunkCache(context.Background()); err != nil || n != 1 {
				t.Errorf("RebuildChunkCache = %d, %v; want 1", n, err)
			}
		})
	}
}

// TestRebuildChunkCacheLocal: a local repository has no chunk cache.
func TestRebuildChunkCacheLocal(t *testing.T) {
	r, _ := newTestRepo(t, false)
	if _, err := r.RebuildChunkCache(context.Background()); err == nil {
		t.Fatal("a local repository rebuilt a chunk cache")
	}
	l := mustLock(t, r, LockShared)
	defer func() { _ = l.Release() }()
	if l.Info.NoTouch || r.skipTouch() {
		t.Fatal("a local repository's backup does not touch")
	}
}

// TestNoTouchLockName: the no-touch mark survives the lock's name.
func TestNoTouchLockName(t *testing.T) {
	li := LockInfo{Kind: LockShared, NoTouch: true, Hostname: "h.x", PID: 7, Started: time.Unix(5, 6).UTC()}
	got, ok := parseLockName(lockName(li))
	if !ok || got != li {
		t.Fatalf("round trip %+v → %+v %v", li, got, ok)
	}
}

// TestNoTouchBackupsRaceGC runs backups that reuse old unreferenced chunks
// (so only their protection keeps them) against gc, many rounds, on a
// billed backend: every committed point's chunks must still be stored,
// whichever of the two took its lock first.
func TestNoTouchBackupsRaceGC(t *testing.T) {
	ctx := context.Background()
	r, _, local := newBilledRepo(t)
	const n = 40
	data := make([][]byte, n)
	ids := make([]ChunkID, n)
	for i := range data {
		data[i] = chunkData(uint64(100+i), 512)
		ids[i] = putTestChunk(t, r, data[i])
	}
	cs := r.Config().ChunkSize
	for round := 0; round < 25; round++ {
		for _, id := range ids { // garbage again: old and unreferenced
			if exists(t, local, chunkName(id)) {
				setMtime(t, local, chunkName(id), time.Now().Add(-48*time.Hour))
			}
		}
		backupErr := make(chan error, 1)
		go func() {
			l, err := r.Lock(ctx, LockShared)
			if err != nil {
				backupErr <- err
				return
			}
			defer func() { _ = l.Release() }()
			ix := &Index{DiskSize: int64(n) * int64(cs), ChunkSize: cs}
			for i, id := range ids {
				ok, err := r.TouchChunk(ctx, id)
				if err == nil && !ok {
					_, err = r.PutChunk(ctx, id, data[i])
				}
				if err != nil {
					backupErr <- err
					return
				}
				ix.Entries = append(ix.Entries, IndexEntry{N: uint64(i), ID: id})
			}
			m := &Manifest{ID: r.NewPointID(), VM: "race", Time: time.Now()}
			hash, err := r.SaveIndex(ctx, m.ID, 0, ix)
			if err == nil {
				m.Disks = []DiskManifest{{Size: ix.DiskSize, ChunkSize: cs, IndexHash: hash, Chunks: n}}
				err = r.CommitPoint(ctx, m)
			}
			backupErr <- err
		}()
		if _, err := r.GC(ctx, GCOptions{}); err != nil && !errors.Is(err, ErrLocked) {
			t.Fatal(err)
		}
		if err := <-backupErr; err != nil {
			t.Fatal(err)
		}
		for i, id := range ids {
			if !exists(t, local, chunkName(id)) {
				t.Fatalf("round %d: chunk %d of a committed point is gone", round, i)
			}
		}
		ms, err := r.ListPoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms { // forget, so the next round's chunks are garbage
			if err := local.Remove(ctx, manifestName(m.ID)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestManifestCache: a backup session on object storage loads each
// manifest from the bucket once; later sessions read the cached copies of
// the points the bucket lists, a damaged copy is loaded again, and a
// forgotten point's copy is dropped. Outside a session (verify, gc) the
// bucket is read.
func TestManifestCache(t *testing.T) {
	ctx := context.Background()
	r, bb, local := newBilledRepo(t)
	var ms []*Manifest
	for i := range 3 {
		ms = append(ms, commitTestPoint(t, r, "vm", time.Now().Add(time.Duration(i)*time.Minute),
			testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(uint64(i), MinChunkSize)}}))
	}
	session := func() []*Manifest {
		t.Helper()
		l := mustLock(t, r, LockShared)
		defer func() { _ = l.Release() }()
		got, err := r.ListPoints(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	bb.reset()
	if got := session(); len(got) != 3 || bb.manifestLoads.Load() != 3 {
		t.Fatalf("first session: %d points, %d manifest loads", len(got), bb.manifestLoads.Load())
	}
	bb.reset()
	if got := session(); len(got) != 3 || bb.manifestLoads.Load() != 0 || got[1].ID != ms[1].ID {
		t.Fatalf("cached session: %d points, %d manifest loads", len(got), bb.manifestLoads.Load())
	}
	dir := filepath.Join(r.cost.cacheDir, r.cfg.ID, "points")
	if err := os.WriteFile(filepath.Join(dir, ms[0].ID), []byte("damaged"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := local.Remove(ctx, manifestName(ms[2].ID)); err != nil { // forgotten
		t.Fatal(err)
	}
	bb.reset()
	if got := session(); len(got) != 2 || bb.manifestLoads.Load() != 1 {
		t.Fatalf("after damage and forget: %d points, %d manifest loads", len(got), bb.manifestLoads.Load())
	}
	if _, err := os.Stat(filepath.Join(dir, ms[2].ID)); !os.IsNotExist(err) {
		t.Errorf("forgotten point's cached manifest kept: %v", err)
	}
	bb.reset()
	if _, err := r.ListPoints(ctx); err != nil || bb.manifestLoads.Load() != 2 {
		t.Errorf("outside a session: %d manifest loads (%v), want the bucket read", bb.manifestLoads.Load(), err)
	}
}
