package storage_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/testutil/storagetest"
	"github.com/holdfast-backup/holdfast/internal/throttle"
)

// TestReadLimitedConformance: the paced backend is still a backend.
func TestReadLimitedConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return storage.ReadLimited(storage.NewLocal(t.TempDir()+"/repo"), throttle.NewBucket(1<<40, 0, nil))
	})
}

// TestReadLimitedPacesLoads: loading 4 MiB at 1 MiB/s takes the fake clock
// about three seconds past the burst; a cancelled load ends at once.
func TestReadLimitedPacesLoads(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 3, 2, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	local := storage.NewLocal(t.TempDir() + "/repo")
	data := bytes.Repeat([]byte("x"), 4<<20)
	if err := local.Save(ctx, "chunks/ab/big", data); err != nil {
		t.Fatal(err)
	}
	be := storage.ReadLimited(local, throttle.NewBucket(1<<20, 1<<20, clk))
	got, err := be.Load(ctx, "chunks/ab/big")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Load: %d bytes, %v", len(got), err)
	}
	if took := clk.Since(t0); took < 3*time.Second || took > 4*time.Second {
		t.Fatalf("4 MiB at 1 MiB/s (1 MiB burst) took %v of fake time, want 3s", took)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := be.Load(cctx, "chunks/ab/big"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Load on a cancelled context: %v", err)
	}
	if _, err := be.Load(ctx, "nope"); !errors.Is(err, storage.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v", err)
	}
}
