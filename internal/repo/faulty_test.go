package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/testutil/storagetest"
)

// backupSequence does what a backup does: shared lock, new chunks, index,
// commit. It stops at the first error.
func backupSequence(ctx context.Context, r *Repository, seed uint64) (*Manifest, error) {
	lock, err := r.Lock(ctx, LockShared)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lock.Release() }()
	h := r.NewHasher()
	ix := &Index{DiskSize: 3 * MinChunkSize, ChunkSize: MinChunkSize}
	for n := uint64(0); n < 3; n++ {
		data := chunkData(seed+n, MinChunkSize)
		id := h.Sum(data)
		if _, err := r.PutChunk(ctx, id, data); err != nil {
			return nil, err
		}
		ix.Entries = append(ix.Entries, IndexEntry{N: n, ID: id})
	}
	m := &Manifest{ID: r.NewPointID(), VM: "vm", Time: time.Now().UTC()}
	hash, err := r.SaveIndex(ctx, m.ID, 0, ix)
	if err != nil {
		return nil, err
	}
	m.Disks = []DiskManifest{{Index: 0, Size: ix.DiskSize, ChunkSize: ix.ChunkSize, IndexHash: hash, Chunks: 3}}
	if err := r.CommitPoint(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}

// sequenceSaves is the number of Saves backupSequence makes.
const sequenceSaves = 1 + 3 + 1 + 1

func TestBackupOutOfSpace(t *testing.T) {
	ctx := context.Background()
	for failAfter := 0; failAfter <= sequenceSaves; failAfter++ {
		t.Run(fmt.Sprint("fail after ", failAfter), func(t *testing.T) {
			clk := newTestClock(time.Now())
			base, be := newClockRepo(t, true, clk)
			first, err := backupSequence(ctx, base, 1)
			if err != nil {
				t.Fatal(err)
			}
			// Every Save after the first failAfter fails with ENOSPC, wrapped
			// the way a file system backend reports it.
			fb := storagetest.NewFaulty(be)
			fb.Add(storagetest.Fault{Op: storagetest.OpSave, Skip: failAfter,
				Err: fmt.Errorf("save: %w", &os.PathError{Op: "write", Path: "f", Err: syscall.ENOSPC})})
			r, err := Open(ctx, fb, []byte("secret"), Options{Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			m, err := backupSequence(ctx, r, 100)
			if failAfter == sequenceSaves {
				// Enough space: the control case commits.
				if err != nil {
					t.Fatalf("backup with enough space: %v", err)
				}
				checkPoints(t, r, first.ID, m.ID)
				return
			}
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("err = %v, want ENOSPC", err)
			}
			if m != nil {
				t.Fatalf("failed backup returned point %s", m.ID)
			}
			if n := fb.Calls(storagetest.OpSave); n != failAfter+1 {
				t.Errorf("%d saves attempted, want %d (stop at the first failure)", n, failAfter+1)
			}
			checkPoints(t, r, first.ID)
			if n := countFiles(t, be, "points"); n != 1 {
				t.Errorf("%d manifests stored, want 1", n)
			}
			if n := countFiles(t, be, "locks"); n != 0 {
				t.Errorf("%d lock files left", n)
			}
			// Once space is back, GC clears what the failed backup left
			// (after the grace period) without touching the committed point.
			fb.Clear()
			clk.Set(time.Now().Add(2 * time.Hour))
			res, err := r.GC(ctx, GCOptions{Grace: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if want := min(max(failAfter-1, 0), 3); res.Removed != want || res.Referenced != 3 {
				t.Errorf("gc removed %d chunks (referenced %d), want %d (3)", res.Removed, res.Referenced, want)
			}
			if wantIx := failAfter >= 5; (res.RemovedIndexes == 1) != wantIx {
				t.Errorf("gc removed %d orphan indexes, want an orphan index: %v", res.RemovedIndexes, wantIx)
			}
			checkPoints(t, r, first.ID)
			if m, err := backupSequence(ctx, r, 100); err != nil {
				t.Errorf("backup after space came back: %v", err)
			} else {
				checkPoints(t, r, first.ID, m.ID)
			}
		})
	}
}

// checkPoints asserts that exactly the given points are committed, load,
// and verify clean with read-data.
func checkPoints(t *testing.T, r *Repository, ids ...string) {
	t.Helper()
	ctx := context.Background()
	got, err := r.PointIDs(ctx)
	want := slices.Clone(ids)
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("points %v, %v; want %v", got, err, want)
	}
	for _, id := range ids {
		m, err := r.LoadManifest(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.LoadIndex(ctx, m, 0); err != nil {
			t.Fatal(err)
		}
	}
	res, err := r.Verify(ctx, VerifyOptions{ReadData: true})
	if err != nil || len(res.Problems) != 0 || res.Points != len(ids) || res.Checked != 3*len(ids) {
		t.Fatalf("verify: %+v, %v", res, err)
	}
}

// TestDamagedReads: when the store fails a read or hands back short or
// corrupted content, reading a point fails, naming what it read, and never
// returns wrong data.
func TestDamagedReads(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		fault  storagetest.Fault
		failOn string // "manifest", "index" or "chunk"
	}{
		{"manifest read error", storagetest.Fault{Op: storagetest.OpLoad, Prefix: "points/"}, "manifest"},
		{"short manifest", storagetest.Fault{Op: storagetest.OpLoad, Prefix: "points/", Short: true}, "manifest"},
		{"corrupted manifest", storagetest.Fault{Op: storagetest.OpLoad, Prefix: "points/", Corrupt: true}, "manifest"},
		{"short index", storagetest.Fault{Op: storagetest.OpLoad, Prefix: "indexes/", Short: true}, "index"},
		{"corrupted index", storagetest.Fault{Op: storagetest.OpLoad, Prefix: "indexes/", Corrupt: true}, "index"},
		{"chunk read error", storagetest.Fault{Op: storagetest.OpLoad, Prefix: "chunks/"}, "chunk"},
		{"short chunk", storagetest.Fault{Op: storagetest.OpLoad, Prefix: "chunks/", Short: true}, "chunk"},
		{"corrupted chunk", storagetest.Fault{Op: storagetest.OpLoad, Prefix: "chunks/", Corrupt: true}, "chunk"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base, be := newTestRepo(t, true)
			m, err := backupSequence(ctx, base, 7)
			if err != nil {
				t.Fatal(err)
			}
			fb := storagetest.NewFaulty(be)
			r, err := Open(ctx, fb, []byte("secret"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			fb.Add(tc.fault)
			got, err := r.LoadManifest(ctx, m.ID)
			if tc.failOn == "manifest" {
				if err == nil || !strings.Contains(err.Error(), m.ID) {
					t.Fatalf("load manifest: %v, want an error naming %s", err, m.ID)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ix, err := r.LoadIndex(ctx, got, 0)
			if tc.failOn == "index" {
				if err == nil || !strings.Contains(err.Error(), m.ID) {
					t.Fatalf("load index: %v, want an error naming %s", err, m.ID)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range ix.Entries {
				data, err := r.GetChunk(ctx, r.NewHasher(), e.ID, nil)
				if err == nil || !strings.Contains(err.Error(), e.ID.String()) {
					t.Fatalf("chunk %d: %d bytes, %v; want an error naming %s", e.N, len(data), err, e.ID)
				}
			}
		})
	}
}
