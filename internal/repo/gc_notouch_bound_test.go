package repo

import (
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo/chunkcache"
)

// TestNoTouchAddedBounded: a no-touch backup never holds more than
// maxAdded observed ids; it merges them into the cache file as it goes,
// so later lookups in the same backup need no Stat, and the cache holds
// every id afterwards with the ones it held before.
func TestNoTouchAddedBounded(t *testing.T) {
	const limit, n = 8, 100
	r, bb, _ := newBilledRepo(t)
	r.cost.maxAdded = limit
	before := putTestChunk(t, r, chunkData(1, 100)) // in the cache once it is built
	l := mustLock(t, r, LockShared)
	var ids []ChunkID
	for i := range n {
		ids = append(ids, putTestChunk(t, r, chunkData(uint64(10+i), 100)))
		r.cost.mu.Lock()
		held, capacity := len(r.cost.added), cap(r.cost.added)
		r.cost.mu.Unlock()
		if held > limit || capacity > limit {
			t.Fatalf("after %d chunks: %d ids held (capacity %d), limit %d", i+1, held, capacity, limit)
		}
	}
	bb.reset()
	for _, id := range ids[:n-limit] { // merged already
		mustHave(t, r, id, true)
	}
	mustHave(t, r, before, true)
	if s := bb.stats.Load(); s != 0 {
		t.Errorf("%d Stats for chunks merged into the cache during the backup", s)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	set, err := chunkcache.Open(r.cachePath())
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	if set.Len() != n+1 || set.Generation() != r.cost.gen {
		t.Errorf("cache holds %d ids (generation %x), want %d", set.Len(), set.Generation(), n+1)
	}
	for i, id := range append(ids, before) {
		if ok, err := set.Contains(id); err != nil || !ok {
			t.Fatalf("cache lacks id %d: %v", i, err)
		}
	}
}
