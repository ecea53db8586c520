package repo

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// laggingStore is a Local backend whose writes get a modification time a
// millisecond behind the repository's clock, as Linux stamps a write with
// its coarse clock (up to a timer tick behind clock_gettime, which lock
// start times and Touch read). Touch sets the time from the clock. afterSave
// runs after each save (nil: nothing).
type laggingStore struct {
	*storage.Local
	clk       *testClock
	afterSave func(name string)
}

func (s *laggingStore) stamp(name string, at time.Time) error {
	err := os.Chtimes(filePath(s.Local, name), at, at)
	if errors.Is(err, fs.ErrNotExist) {
		return storage.ErrNotExist
	}
	return err
}

func (s *laggingStore) Save(ctx context.Context, name string, data []byte) error {
	if err := s.Local.Save(ctx, name, data); err != nil {
		return err
	}
	if err := s.stamp(name, s.clk.Now().Add(-time.Millisecond)); err != nil {
		return err
	}
	if s.afterSave != nil {
		s.afterSave(name)
	}
	return nil
}

func (s *laggingStore) Touch(ctx context.Context, name string) error {
	return s.stamp(name, s.clk.Now())
}

// TestGCKeepsWhatARunningBackupWrote: a backup takes its shared lock, then
// (a moment later, within one tick of the storage's clock) writes a chunk
// the repository lacks and its index, and GC with grace 0 runs before the
// point is committed — after the writes, or between a chunk's write and
// the writer setting its time. The chunk and index have storage times
// before the lock's start; GC must still keep them, so the committed point
// is whole.
func TestGCKeepsWhatARunningBackupWrote(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		gcMidWrite bool // GC runs right after the chunk's save
	}{
		{"gc after the writes", false},
		{"gc between a chunk's save and its time", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newTestClock(time.Now())
			dir := t.TempDir()
			be := &laggingStore{Local: storage.NewLocal(dir), clk: clk}
			r, err := Init(ctx, be, []byte("secret"), InitOptions{KDF: fastKDF, ChunkSize: MinChunkSize, Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			lock, err := r.Lock(ctx, LockShared)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = lock.Release() }()
			clk.Advance(500 * time.Microsecond)
			gcs, removed := 0, 0
			gc := func() {
				gcs++
				res, err := r.GC(ctx, GCOptions{Grace: 0})
				if err != nil {
					t.Fatal(err)
				}
				removed += res.Removed
			}
			if tc.gcMidWrite {
				be.afterSave = func(name string) {
					if strings.HasPrefix(name, "chunks/") && gcs == 0 {
						gc()
					}
				}
			}
			data := chunkData(11, MinChunkSize)
			m := writeTestIndexes(t, r, "vm", clk.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: data}})
			be.afterSave = nil
			gc()
			if err := r.CommitPoint(ctx, m); err != nil {
				t.Fatal(err)
			}
			id := r.NewHasher().Sum(data)
			if !exists(t, be.Local, chunkName(id)) || !exists(t, be.Local, indexName(m.ID, 0)) {
				t.Fatalf("GC removed what the running backup wrote: chunk %v, index %v",
					exists(t, be.Local, chunkName(id)), exists(t, be.Local, indexName(m.ID, 0)))
			}
			if _, err := r.GetChunk(ctx, r.NewHasher(), id, nil); err != nil {
				t.Fatal(err)
			}
			// Mid-write, GC saw the storage's time and took the chunk: the
			// writer stored it again.
			if want := map[bool]int{false: 0, true: 1}[tc.gcMidWrite]; removed != want {
				t.Errorf("GC removed %d chunks, want %d", removed, want)
			}
		})
	}
}
