package scan

import (
	"slices"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/publish"
)

// A filesystem of a type publish does not mount (a Windows volume, an
// EFI system partition, an encrypted volume) is not scanned, so it makes
// the scan not fully scanned; swap, LVM physical volumes and volumes
// without a filesystem do not.
func TestMountedOfUnmountedTypes(t *testing.T) {
	fss := []publish.Filesystem{
		{Name: "disk0-p1", FSType: "vfat"},
		{Name: "disk0-p2", FSType: "ext4", Mountpoint: "/m/p2"},
		{Name: "disk0-p3", FSType: "LVM2_member"},
		{Name: "disk0-p4", FSType: "swap"},
		{Name: "disk0-p5", FSType: ""},
		{Name: "disk1-p1", FSType: "ntfs"},
		{Name: "disk1-p2", FSType: "xfs", Problem: "not mounted: bad superblock"},
	}
	m := mountedOf(fss, []string{"disk1-p2 (xfs on /dev/loop1p2): not mounted: bad superblock"})
	if len(m.Targets) != 1 || m.Targets[0] != (Target{Name: "disk0-p2", Root: "/m/p2"}) {
		t.Errorf("targets %+v", m.Targets)
	}
	if !slices.Equal(m.Unmounted, []string{"disk0-p1", "disk0-p3", "disk0-p4", "disk0-p5", "disk1-p1", "disk1-p2"}) {
		t.Errorf("unmounted %q", m.Unmounted)
	}
	got := strings.Join(m.Problems, "\n")
	if len(m.Problems) != 3 || !strings.Contains(got, "disk0-p1 (vfat)") || !strings.Contains(got, "disk1-p1 (ntfs)") {
		t.Errorf("problems %q", m.Problems)
	}
}
