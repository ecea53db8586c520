package pipeline

import (
	"context"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

// trackedDisk is a memdisk.Disk with a change tracker that knows the changes
// since one change ID only.
type trackedDisk struct {
	*memdisk.Disk
	since   string // the change ID the extents are relative to
	changed []source.Extent
	id      string
}

func (d *trackedDisk) Changed(_ context.Context, prev string) (source.Changes, error) {
	if prev != d.since {
		return source.Changes{Reason: "bitmap belongs to another backup"}, nil
	}
	return source.Changes{Extents: d.changed, Known: true}, nil
}
func (d *trackedDisk) ChangeID() string { return d.id }

func TestChangeTrackerUsedAndFallback(t *testing.T) {
	ctx := context.Background()
	r := testrepo.New(t, nil)
	base := memdisk.Standard(cs)
	backup := func(d *trackedDisk) (int64, string, []string) {
		t.Helper()
		m, err := BackupPoint(ctx, r, PointRequest{VM: "vm", Disks: []source.Disk{d}, ChunkSize: cs}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if m.Disks[0].ChangeID != d.id {
			t.Fatalf("change id %q recorded, want %q", m.Disks[0].ChangeID, d.id)
		}
		if got := restoreTo(t, r, m, 0); string(got) != string(d.Data) {
			t.Fatal("restore differs")
		}
		return m.Disks[0].Stats.BytesRead, m.Disks[0].CBT, m.Disks[0].Warnings
	}
	read, cbt, _ := backup(&trackedDisk{Disk: base, id: "g1"})
	if !strings.Contains(cbt, "no previous") || read != 30*cs+1000 {
		t.Fatalf("first backup: cbt %q, read %d", cbt, read)
	}
	base.Data[3*cs] ^= 1
	read, cbt, _ = backup(&trackedDisk{Disk: base, id: "g2", since: "g1", changed: []source.Extent{{Offset: 3 * cs, Length: 1}}})
	if cbt != "used" || read != cs {
		t.Fatalf("incremental: cbt %q, read %d, want one chunk", cbt, read)
	}
	base.Data[4*cs] ^= 1
	read, cbt, warn := backup(&trackedDisk{Disk: base, id: "g3", since: "other"})
	if !strings.Contains(cbt, "another backup") || len(warn) != 1 || read != 30*cs+1000 {
		t.Fatalf("fallback: cbt %q, warnings %v, read %d", cbt, warn, read)
	}
}
