package libvirt

import (
	"strings"
	"testing"
)

const testCheckpoint = `<domaincheckpoint><name>holdfast-t-1</name><disks>
<disk name='vda' checkpoint='bitmap' bitmap='holdfast-t-1'/><disk name='vdc' checkpoint='no'/><disk name='vdd' checkpoint='bitmap' bitmap='holdfast-t-1'/>
</disks><domain type='qemu'><name>d</name><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/a.qcow2'/><target dev='vda' bus='virtio'/></disk>
<disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/c.raw'/><target dev='vdc' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/d.qcow2'/><target dev='vdd' bus='virtio'/></disk>
</devices></domain></domaincheckpoint>`

// TestDiskReason: a disk is incremental only when the checkpoint has its
// bitmap, the previous point recorded the checkpoint for it, and it sits
// at the same index as then.
func TestDiskReason(t *testing.T) {
	cp, err := parseCheckpoint(testCheckpoint)
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.disks) != 3 || cp.disks[1].Target != "vdc" || !cp.bitmaps["vda"] || cp.bitmaps["vdc"] {
		t.Fatalf("checkpoint %+v", cp)
	}
	tests := []struct {
		i            int
		target, prev string
		in           string // "" = incremental
	}{
		{0, "vda", "holdfast-t-1", ""},
		{2, "vdd", "holdfast-t-1", ""},
		{3, "vde", "", "no bitmap of disk vde"},             // added since
		{1, "vdd", "holdfast-t-1", "was not disk 1"},        // vdc removed: vdd moved up
		{0, "vda", "", "no checkpoint in the previous"},     // previous point without it
		{1, "vdc", "holdfast-t-1", "no bitmap of disk vdc"}, // raw then, qcow2 now
	}
	for _, tc := range tests {
		why := cp.diskReason(tc.i, tc.target, tc.prev)
		if (tc.in == "") != (why == "") || !strings.Contains(why, tc.in) {
			t.Errorf("diskReason(%d, %s, %q) = %q, want %q", tc.i, tc.target, tc.prev, why, tc.in)
		}
	}
	// Without the recorded domain only the bitmap and the recorded ID count.
	cp, err = parseCheckpoint("<domaincheckpoint><name>c</name><disks><disk name='vdb' checkpoint='bitmap'/></disks></domaincheckpoint>")
	if err != nil || cp.domain || cp.diskReason(0, "vdb", "c") != "" || cp.diskReason(0, "vda", "c") == "" {
		t.Fatalf("checkpoint without domain: %+v %v", cp, err)
	}
	if _, err := parseCheckpoint("<domaincheckpoint><disks"); err == nil {
		t.Fatal("a corrupt checkpoint XML parsed")
	}
}

func TestCommonPrevious(t *testing.T) {
	q, r := vmDisk{Target: "vda", Format: "qcow2"}, vmDisk{Target: "vdb", Format: "raw"}
	tests := []struct {
		disks []vmDisk
		ids   []string
		prev  string
		ok    bool
	}{
		{[]vmDisk{q, r}, []string{"a", ""}, "a", true},
		{[]vmDisk{q, q}, []string{"a"}, "a", true},      // a disk added since
		{[]vmDisk{q, q}, []string{"", "a"}, "a", true},  // a disk without one then
		{[]vmDisk{q, q}, []string{"a", "b"}, "", false}, // two checkpoints
		{[]vmDisk{r, q}, []string{"x", "a"}, "a", true}, // a raw disk's ID does not count
		{[]vmDisk{q}, nil, "", true},
	}
	for _, tc := range tests {
		prev, ok := commonPrevious(tc.disks, tc.ids)
		if prev != tc.prev || ok != tc.ok {
			t.Errorf("commonPrevious(%v) = %q %v, want %q %v", tc.ids, prev, ok, tc.prev, tc.ok)
		}
	}
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add(testCheckpoint)
	f.Add("<domaincheckpoint><name>c</name></domaincheckpoint>")
	f.Add("<domaincheckpoint><domain><devices><disk device='disk'/></devices></domain></domaincheckpoint>")
	f.Fuzz(func(t *testing.T, doc string) {
		cp, err := parseCheckpoint(doc)
		if err != nil {
			return
		}
		_ = cp.diskReason(0, "vda", cp.name)
	})
}
