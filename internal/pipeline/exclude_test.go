package pipeline

import (
	"bytes"
	"context"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/fsmap"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

// swapDisk is a whole-disk Linux swap volume of chunks chunks with random
// bytes after its header page.
func swapDisk(chunks int) *memdisk.Disk {
	d := memdisk.Random(chunks*cs, 7)
	clear(d.Data[:4096])
	copy(d.Data[4096-10:], "SWAPSPACE2")
	return d
}

// TestExcludeSwap: the swap body is left out, read as zeros, recorded in
// the manifest, and restores as zeros after a kept header page.
func TestExcludeSwap(t *testing.T) {
	ctx := context.Background()
	r := testrepo.New(t, nil)
	d := swapDisk(8)
	m, err := BackupPoint(ctx, r, PointRequest{VM: "vm", Disks: []source.Disk{d}, ChunkSize: cs,
		Exclude: fsmap.Options{Swap: true}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dm := m.Disks[0]
	if dm.Excluded == nil || dm.Excluded.Bytes[fsmap.ReasonSwap] != int64(8*cs-4096) || dm.Excluded.Total() != int64(8*cs-4096) {
		t.Fatalf("excluded %+v", dm.Excluded)
	}
	if len(dm.Excluded.Chunks) != 1 || dm.Excluded.Chunks[0] != (repo.ByteRange{Offset: 0, Length: 8 * cs}) {
		t.Fatalf("excluded chunks %+v", dm.Excluded.Chunks)
	}
	if dm.Stats.BytesNew != cs || dm.Stats.BytesRead != cs {
		t.Fatalf("stats %+v: only the header chunk should be read and stored", dm.Stats)
	}
	got := restoreTo(t, r, m, 0)
	if !bytes.Equal(got[:4096], d.Data[:4096]) || !bytes.Equal(got[4096:], make([]byte, 8*cs-4096)) {
		t.Fatal("restore is not the header page followed by zeros")
	}
}

// TestExcludedRangesReReadWithCBT: what a point left out is read again by
// the next backup even when change tracking says it did not change (it
// may have become live without a write), so no stale zeros are reused.
func TestExcludedRangesReReadWithCBT(t *testing.T) {
	ctx := context.Background()
	r := testrepo.New(t, nil)
	d := swapDisk(8)
	backup := func(td *trackedDisk, opt fsmap.Options) *repo.Manifest {
		t.Helper()
		m, err := BackupPoint(ctx, r, PointRequest{VM: "vm", Disks: []source.Disk{td}, ChunkSize: cs, Exclude: opt}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	backup(&trackedDisk{Disk: d, id: "g1"}, fsmap.Options{Swap: true})
	// The guest turns the swap into data: only the header changes as far
	// as change tracking knows, but the whole body is live now.
	copy(d.Data[4096-10:], "NOTSWAP!!!")
	m := backup(&trackedDisk{Disk: d, id: "g2", since: "g1", changed: []source.Extent{{Offset: 0, Length: 4096}}}, fsmap.Options{Swap: true})
	if m.Disks[0].CBT != "used" || m.Disks[0].Excluded.Total() != 0 {
		t.Fatalf("cbt %q, excluded %+v", m.Disks[0].CBT, m.Disks[0].Excluded)
	}
	if got := restoreTo(t, r, m, 0); !bytes.Equal(got, d.Data) {
		t.Fatal("the body excluded at the previous point was reused as zeros")
	}
	// A third backup without exclusion and no change reuses everything.
	m = backup(&trackedDisk{Disk: d, id: "g3", since: "g2"}, fsmap.Options{})
	if m.Disks[0].Stats.BytesRead != 0 || m.Disks[0].Excluded != nil {
		t.Fatalf("stats %+v, excluded %+v", m.Disks[0].Stats, m.Disks[0].Excluded)
	}
}

func TestReReadExcludedOmitted(t *testing.T) {
	job := DiskJob{Changed: []source.Extent{{Offset: 0, Length: 1}}, ChangedKnown: true}
	prev := &repo.DiskManifest{Excluded: &repo.Excluded{ChunksOmitted: true}}
	if cbt := reReadExcluded(&job, prev, "used"); cbt != cbtOmitted || job.ChangedKnown {
		t.Fatalf("cbt %q, known %v: an omitted list must force a full read", cbt, job.ChangedKnown)
	}
}

func TestChunkRunsBounded(t *testing.T) {
	var ex []source.Extent
	for i := int64(0); i < 3*repo.MaxExcludedRuns; i++ {
		ex = append(ex, source.Extent{Offset: i * 2 * cs, Length: 1})
	}
	if n := len(chunkRuns(ex, cs, 1<<40)); n != repo.MaxExcludedRuns+1 {
		t.Fatalf("%d runs", n)
	}
	got := chunkRuns([]source.Extent{{Offset: 10, Length: 5}, {Offset: cs + 3, Length: 2}, {Offset: 5 * cs, Length: cs + 1}}, cs, 6*cs+100)
	want := []repo.ByteRange{{Offset: 0, Length: 2 * cs}, {Offset: 5 * cs, Length: cs + 100}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("chunk runs %+v, want %+v", got, want)
	}
}
