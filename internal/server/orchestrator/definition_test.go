package orchestrator

import (
	"testing"

	"github.com/holdfast-backup/holdfast/internal/jobdef"

	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

func TestBottleneck(t *testing.T) {
	if bottleneck(taskproto.Stages{}) != nil {
		t.Error("nothing measured must give no bottleneck")
	}
	b := bottleneck(taskproto.Stages{SourceNanos: 100, ProxyNanos: 300, NetworkNanos: 500, TargetNanos: 100})
	if b.Limit != "network" || b.Source != 0.1 || b.Proxy != 0.3 || b.Network != 0.5 || b.Target != 0.1 {
		t.Errorf("%+v", b)
	}
}

// TestDiskFormat: the administrator's formats win over recorded ones, a
// backing chain is followed only for disks the administrator gave as
// qcow2, and non-file disks carry no format.
func TestDiskFormat(t *testing.T) {
	def := jobdef.Definition{DiskFormats: map[string]string{"/b.qcow2": "qcow2", "/c.vmdk": "vmdk"},
		RecordedFormats: map[string]string{"/a.img": "raw", "/b.qcow2": "raw", "/r.qcow2": "qcow2"}}
	withJobFormat := def
	withJobFormat.Format, withJobFormat.FollowBacking = "qcow2", true
	withFollow := def
	withFollow.FollowBacking = true
	tests := []struct {
		def    jobdef.Definition
		disk   string
		format string
		follow bool
	}{
		{def, "/a.img", "raw", false},
		{def, "file:///a.img", "", false}, // recorded under another name: detected again
		{def, "/b.qcow2", "qcow2", false},
		{def, "/c.vmdk", "vmdk", false},
		{def, "/new.img", "", false},
		{def, "nbd://h/x", "", false},
		{def, "qemu:///run/qmp.sock", "", false},
		{withJobFormat, "/a.img", "qcow2", true},
		{withJobFormat, "nbd://h/x", "", false},
		{withFollow, "/b.qcow2", "qcow2", true},
		{withFollow, "/r.qcow2", "qcow2", false}, // recorded, not given: never follows
		{withFollow, "/c.vmdk", "vmdk", false},
	}
	for _, tc := range tests {
		f, follow := diskFormat(&tc.def, tc.disk)
		if f != tc.format || follow != tc.follow {
			t.Errorf("format %q, follow %v, disk %s: got %q, %v; want %q, %v",
				tc.def.Format, tc.def.FollowBacking, tc.disk, f, follow, tc.format, tc.follow)
		}
	}
}
