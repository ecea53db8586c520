package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

// memTarget is an in-memory rollback target that counts writes.
type memTarget struct {
	mu     sync.Mutex
	data   []byte
	writes int
	bytes  int64
}

func (m *memTarget) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(p, m.data[off:]), nil
}

func (m *memTarget) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	m.bytes += int64(len(p))
	return copy(m.data[off:], p), nil
}

// zeroingTarget also offers WriteZeroes.
type zeroingTarget struct {
	memTarget
	zeroes int
}

func (z *zeroingTarget) WriteZeroes(_ context.Context, off, length int64) error {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.zeroes++
	clear(z.data[off : off+length])
	return nil
}

// backupTestDisk backs up testDisk and returns its data and index.
func backupTestDisk(t *testing.T) (*repo.Repository, []byte, *repo.Index) {
	t.Helper()
	ctx := context.Background()
	r := testrepo.New(t, nil)
	d := memdisk.Standard(cs)
	m, err := BackupPoint(ctx, r, PointRequest{VM: "vm1", Disks: []source.Disk{d}, ChunkSize: cs}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := r.LoadIndex(ctx, m, 0)
	if err != nil {
		t.Fatal(err)
	}
	return r, d.Data, ix
}

// scribble changes chunk 2 (data), 12 (zero, allocated), 25 (zero,
// unallocated) and the short tail chunk 40.
func scribble(b []byte) {
	b[2*cs+7] ^= 0xff
	b[12*cs+100] = 1
	copy(b[25*cs:], "guest wrote here")
	b[len(b)-1] ^= 0xff
}

func TestRollbackRewritesOnlyDifferingChunks(t *testing.T) {
	r, want, ix := backupTestDisk(t)
	for _, zeroing := range []bool{false, true} {
		zt := &zeroingTarget{memTarget: memTarget{data: bytes.Clone(want)}}
		scribble(zt.data)
		var tgt RollbackTarget = &zt.memTarget
		if zeroing {
			tgt = zt
		}
		st, err := RollbackDisk(context.Background(), streamDisk(t, r, ix), tgt, Options{Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(zt.data, want) {
			t.Fatalf("zeroing=%v: target differs from the point after rollback", zeroing)
		}
		wantSt := RollbackStats{ChunksCompared: 41, ChunksWritten: 4, ChunksZeroed: 2, BytesWritten: 3*cs + 1000}
		if st != wantSt {
			t.Errorf("zeroing=%v: stats %+v, want %+v", zeroing, st, wantSt)
		}
		wantWrites, wantBytes, wantZeroes := 4, int64(3*cs+1000), 0
		if zeroing {
			wantWrites, wantBytes, wantZeroes = 2, cs+1000, 2
		}
		if zt.writes != wantWrites || zt.bytes != wantBytes || zt.zeroes != wantZeroes {
			t.Errorf("zeroing=%v: %d WriteAt (%d bytes), %d WriteZeroes; want %d (%d), %d",
				zeroing, zt.writes, zt.bytes, zt.zeroes, wantWrites, wantBytes, wantZeroes)
		}
	}
}

func TestRollbackUnchangedAndGarbage(t *testing.T) {
	r, want, ix := backupTestDisk(t)
	same := &memTarget{data: bytes.Clone(want)}
	var progress atomic.Int64
	st, err := RollbackDisk(context.Background(), streamDisk(t, r, ix), same, Options{Progress: func(n int64) { progress.Add(n) }})
	if err != nil || st.ChunksWritten != 0 || same.writes != 0 {
		t.Fatalf("unchanged target: %+v, %d writes, %v", st, same.writes, err)
	}
	if progress.Load() != int64(len(want)) {
		t.Errorf("progress %d, want %d", progress.Load(), len(want))
	}
	garbage := &memTarget{data: bytes.Repeat([]byte{0xee}, len(want))}
	st, err = RollbackDisk(context.Background(), streamDisk(t, r, ix), garbage, Options{Workers: 5})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(garbage.data, want) || st.ChunksWritten != 41 {
		t.Fatalf("garbage target: equal=%v, stats %+v", bytes.Equal(garbage.data, want), st)
	}
}

func TestRollbackShortTargetFails(t *testing.T) {
	r, want, ix := backupTestDisk(t)
	short := &memTarget{data: bytes.Clone(want[:len(want)-10])}
	if _, err := RollbackDisk(context.Background(), streamDisk(t, r, ix), short, Options{}); err == nil {
		t.Fatal("rollback into a short target succeeded")
	}
}

func TestRollbackRefusesCorruptChunk(t *testing.T) {
	r, want, ix := backupTestDisk(t)
	id := ix.Entries[3].ID.String()
	p := filepath.Join(r.Backend().Location(), "chunks", id[:2], id)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	_ = os.WriteFile(p, b, 0o600)
	tgt := &memTarget{data: bytes.Clone(want)}
	tgt.data[3*cs] ^= 1
	_, err := RollbackDisk(context.Background(), streamDisk(t, r, ix), tgt, Options{})
	if !errors.Is(err, repo.ErrCorrupt) {
		t.Fatalf("rollback with a corrupt chunk: %v, want ErrCorrupt", err)
	}
	if tgt.writes != 0 {
		t.Fatalf("%d writes despite the corrupt chunk", tgt.writes)
	}
}

func TestRollbackFile(t *testing.T) {
	r, want, ix := backupTestDisk(t)
	p := filepath.Join(t.TempDir(), "disk.raw")
	b := bytes.Clone(want)
	scribble(b)
	_ = os.WriteFile(p, b, 0o600)
	f, err := OpenRollbackFile(p, ix.DiskSize)
	if err != nil {
		t.Fatal(err)
	}
	st, err := RollbackDisk(context.Background(), streamDisk(t, r, ix), f, Options{})
	if err != nil {
		f.Abort()
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, want) || st.ChunksWritten != 4 {
		t.Fatalf("rolled back file: equal=%v, stats %+v", bytes.Equal(got, want), st)
	}
	if _, err := OpenRollbackFile(p, ix.DiskSize-1); err == nil {
		t.Error("rollback into a larger file accepted")
	}
	if _, err := OpenRollbackFile(p+".missing", ix.DiskSize); err == nil {
		t.Error("rollback into a missing file accepted")
	}
}

// TestRollbackDiskAreas: only the chunks overlapping the areas are read
// and compared; a change outside them stays, the ones inside are undone.
func TestRollbackDiskAreas(t *testing.T) {
	r, want, ix := backupTestDisk(t)
	tgt := &memTarget{data: bytes.Clone(want)}
	scribble(tgt.data) // chunks 2, 12, 25 and 40
	areas := []Area{
		{Offset: 2*cs + 5, Length: 10},      // chunk 2
		{Offset: 11 * cs, Length: 2*cs + 1}, // chunks 11, 12 and 13
		{Offset: 2 * cs, Length: 1},         // chunk 2 again
		{Offset: 40 * cs, Length: 0},        // empty: nothing
	}
	st, err := RollbackDiskAreas(context.Background(), streamDisk(t, r, ix), tgt, areas, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if wantSt := (RollbackStats{ChunksCompared: 4, ChunksWritten: 2, ChunksZeroed: 1, BytesWritten: 2 * cs}); st != wantSt {
		t.Errorf("stats %+v, want %+v", st, wantSt)
	}
	if !bytes.Equal(tgt.data[:25*cs], want[:25*cs]) {
		t.Error("chunks 2 and 12 were not rolled back")
	}
	if bytes.Equal(tgt.data[25*cs:26*cs], want[25*cs:26*cs]) {
		t.Error("chunk 25, outside the areas, was rolled back")
	}
	st, err = RollbackDiskAreas(context.Background(), streamDisk(t, r, ix), tgt, nil, Options{})
	if err != nil || st != (RollbackStats{}) {
		t.Errorf("no areas: %+v, %v; want nothing done", st, err)
	}
}
