package repo

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// TestHoldKeepsPoint: a held point is not removed and gc keeps its
// chunks; released, it goes as usual.
func TestHoldKeepsPoint(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t, true)
	data := chunkData(1, MinChunkSize)
	m := commitTestPoint(t, r, "vm", time.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: data}})
	id := r.NewHasher().Sum(data)
	h := Hold{Point: m.ID, Holder: "ir-0000abcd", Who: "host pid 1", Why: "instant recovery"}
	if err := r.HoldPoint(ctx, h); err != nil {
		t.Fatal(err)
	}
	err := r.RemovePoint(ctx, m)
	if !errors.Is(err, ErrPointHeld) || !exists(t, be, manifestName(m.ID)) || !exists(t, be, indexName(m.ID, 0)) {
		t.Fatalf("remove a held point: %v", err)
	}
	if res, err := r.GC(ctx, GCOptions{}); err != nil || res.Removed != 0 || !exists(t, be, chunkName(id)) {
		t.Fatalf("gc with a held point: %+v %v", res, err)
	}
	hs, err := r.Holds(ctx)
	if err != nil || len(hs) != 1 || hs[0].Holder != h.Holder || hs[0].Why != h.Why || hs[0].Since.IsZero() {
		t.Fatalf("holds: %+v %v", hs, err)
	}
	if err := r.ReleaseHold(ctx, m.ID, h.Holder); err != nil {
		t.Fatal(err)
	}
	if err := r.RemovePoint(ctx, m); err != nil {
		t.Fatal(err)
	}
	if res, err := r.GC(ctx, GCOptions{}); err != nil || res.Removed != 1 || exists(t, be, "holds/"+m.ID) {
		t.Fatalf("gc after release: %+v %v\n%s", res, err, listAll(t, be))
	}
	// A hold on a point that is not there is refused and leaves nothing.
	h.Point = m.ID
	if err := r.HoldPoint(ctx, h); !errors.Is(err, ErrPointNotFound) || exists(t, be, holdName(m.ID, h.Holder)) {
		t.Fatalf("hold a removed point: %v", err)
	}
}

// holdRaceBackend takes a hold right after the manifest is removed, as an
// instant recovery session starting at that moment would.
type holdRaceBackend struct {
	storage.Backend
	hold Hold
}

func (b *holdRaceBackend) Remove(ctx context.Context, name string) error {
	err := b.Backend.Remove(ctx, name)
	if name == manifestName(b.hold.Point) {
		if herr := b.Backend.Save(ctx, holdName(b.hold.Point, b.hold.Holder), []byte("{}")); herr != nil {
			return herr
		}
	}
	return err
}

func TestHoldRacesRemovePoint(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t, false)
	m := commitTestPoint(t, r, "vm", time.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: chunkData(1, MinChunkSize)}})
	rb := r.WithBackend(&holdRaceBackend{Backend: be, hold: Hold{Point: m.ID, Holder: "racer"}})
	if err := rb.RemovePoint(ctx, m); !errors.Is(err, ErrPointHeld) {
		t.Fatalf("remove racing a hold: %v", err)
	}
	if _, err := r.LoadManifest(ctx, m.ID); err != nil {
		t.Fatalf("the manifest was not put back: %v", err)
	}
	if _, err := r.LoadIndex(ctx, m, 0); err != nil {
		t.Fatalf("the index went: %v", err)
	}
}
