package repo

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// testClock is an injectable clock (InitOptions.Clock / Options.Clock).
type testClock struct{ *clock.Fake }

func newTestClock(t time.Time) *testClock { return &testClock{clock.NewFake(t)} }

// newClockRepo is newTestRepo with an injected clock.
func newClockRepo(t testing.TB, encrypted bool, clk *testClock) (*Repository, *storage.Local) {
	t.Helper()
	be := storage.NewLocal(t.TempDir())
	r, err := Init(context.Background(), be, []byte("secret"),
		InitOptions{Encrypted: encrypted, KDF: fastKDF, ChunkSize: MinChunkSize, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, be
}

// chunkData returns n deterministic, incompressible bytes for a seed.
func chunkData(seed uint64, n int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	rng := rand.NewChaCha8(key)
	b := make([]byte, n)
	_, _ = rng.Read(b)
	return b
}

// testDisk describes a disk of a test point: its size and the content of
// its non-zero chunks by chunk number.
type testDisk struct {
	size   int64
	chunks map[uint64][]byte
}

// putTestChunk stores a chunk and returns its ID.
func putTestChunk(t testing.TB, r *Repository, data []byte) ChunkID {
	t.Helper()
	id := r.NewHasher().Sum(data)
	if _, err := r.PutChunk(context.Background(), id, data); err != nil {
		t.Fatal(err)
	}
	return id
}

// writeTestIndexes stores the chunks and indexes of a point without
// committing it, and returns the manifest CommitPoint would write.
func writeTestIndexes(t testing.TB, r *Repository, vm string, at time.Time, disks ...testDisk) *Manifest {
	t.Helper()
	ctx := context.Background()
	m := &Manifest{ID: r.NewPointID(), VM: vm, Time: at}
	for i, d := range disks {
		ix := &Index{DiskSize: d.size, ChunkSize: r.Config().ChunkSize}
		ns := make([]uint64, 0, len(d.chunks))
		for n := range d.chunks {
			ns = append(ns, n)
		}
		slices.Sort(ns)
		for _, n := range ns {
			if len(d.chunks[n]) != ix.ChunkLen(n) {
				t.Fatalf("test disk %d chunk %d: %d bytes, want %d", i, n, len(d.chunks[n]), ix.ChunkLen(n))
			}
			ix.Entries = append(ix.Entries, IndexEntry{N: n, ID: putTestChunk(t, r, d.chunks[n])})
		}
		hash, err := r.SaveIndex(ctx, m.ID, i, ix)
		if err != nil {
			t.Fatal(err)
		}
		m.Disks = append(m.Disks, DiskManifest{Index: i, Size: d.size, ChunkSize: ix.ChunkSize,
			IndexHash: hash, Chunks: len(ix.Entries)})
	}
	return m
}

// commitTestPoint writes and commits a point.
func commitTestPoint(t testing.TB, r *Repository, vm string, at time.Time, disks ...testDisk) *Manifest {
	t.Helper()
	m := writeTestIndexes(t, r, vm, at, disks...)
	if err := r.CommitPoint(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

// filePath is the local path of a storage name.
func filePath(be *storage.Local, name string) string {
	return filepath.Join(be.Location(), filepath.FromSlash(name))
}

func setMtime(t testing.TB, be *storage.Local, name string, mt time.Time) {
	t.Helper()
	if err := os.Chtimes(filePath(be, name), mt, mt); err != nil {
		t.Fatal(err)
	}
}

func exists(t testing.TB, be *storage.Local, name string) bool {
	t.Helper()
	_, err := os.Stat(filePath(be, name))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

// flipByte inverts one byte of a stored file; negative offsets count from
// the end.
func flipByte(t testing.TB, be *storage.Local, name string, off int) {
	t.Helper()
	p := filePath(be, name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += len(b)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// dirBytes sums the sizes of the files below a storage directory.
func dirBytes(t testing.TB, be *storage.Local, dir string) int64 {
	t.Helper()
	var n int64
	err := be.List(context.Background(), dir, func(fi storage.FileInfo) error {
		n += fi.Size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
