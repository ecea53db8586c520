package orchestrator

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

func TestParseDefinition(t *testing.T) {
	tests := []struct {
		def, err string
	}{
		{`{"vms":[{"name":"a","disks":["/a.img","nbd://h/x"]}],"repository":"r"}`, ""},
		{`{"vms":[{"name":"a","disks":["/a.img"]}]}`, "names no repository"},
		{`{"vms":[],"repository":"r"}`, "lists no VMs"},
		{`{"vms":["a"],"repository":"r"}`, "lists no disks"},
		{`{"vms":[{"name":"a","disks":["/a"]},{"name":"a","disks":["/b"]}],"repository":"r"}`, "listed twice"},
		{`{"vms":[{"name":"a","disks":["qemu:///run/vm/qmp.sock"]}],"repository":"r"}`, ""},
		{`{"vms":[{"name":"a","disks":["qemu:///run/vm/qmp.sock","/b.img"]}],"repository":"r"}`, "the whole VM"},
		{`{"vms":[{"name":"a","disks":["qemu://relative.sock"]}],"repository":"r"}`, "the whole VM"},
		{`{"vms":[{"name":"a","disks":["/a"]}],"repository":"r","retries":{"count":-1}}`, "negative retries"},
		{`{"vms":[{"name":"a","disks":["/a"]}],"repository":"r","chunk_size":-5}`, "chunk size"},
		{`[1,2]`, "job definition"},
		{`{"vms":[{"name":"../../x","disks":["/a"]}],"repository":"r"}`, "invalid VM name"},
		{`{"vms":[{"name":"a\nb","disks":["/a"]}],"repository":"r"}`, "invalid VM name"},
		{`{"vms":[{"name":"","disks":["/a"]}],"repository":"r"}`, "invalid VM name"},
		{`{"vms":[{"name":"a","disks":["/a"]}],"repository":"r","format":"raw"}`, ""},
		{`{"vms":[{"name":"a","disks":["/a"]}],"repository":"r","format":"vhdx"}`, `format "vhdx"`},
		{`{"vms":[{"name":"a","disks":["/a"]}],"repository":"r","disk_formats":{"/a":"qcow"}}`, `disk_formats["/a"]`},
		{`{"vms":[{"name":"a","disks":["/a"]}],"repository":"r","recorded_formats":{"/a":""}}`, `recorded_formats["/a"]`},
		{`{"vms":[{"name":"a","disks":["/a"]}],"repository":"r","follow_backing":true}`, "follow_backing needs"},
		{`{"vms":[{"name":"a","disks":["/a"]}],"repository":"r","follow_backing":true,"format":"raw"}`, "follow_backing needs"},
		{`{"vms":[{"name":"a","disks":["/a"]}],"repository":"r","follow_backing":true,"format":"qcow2"}`, ""},
	}
	for _, tc := range tests {
		_, err := parseDefinition(json.RawMessage(tc.def))
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want %q", tc.def, err, tc.err)
		}
	}
}

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
	def := definition{DiskFormats: map[string]string{"/b.qcow2": "qcow2", "/c.vmdk": "vmdk"},
		RecordedFormats: map[string]string{"/a.img": "raw", "/b.qcow2": "raw", "/r.qcow2": "qcow2"}}
	withJobFormat := def
	withJobFormat.Format, withJobFormat.FollowBacking = "qcow2", true
	withFollow := def
	withFollow.FollowBacking = true
	tests := []struct {
		def    definition
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
		f, follow := tc.def.diskFormat(tc.disk)
		if f != tc.format || follow != tc.follow {
			t.Errorf("format %q, follow %v, disk %s: got %q, %v; want %q, %v",
				tc.def.Format, tc.def.FollowBacking, tc.disk, f, follow, tc.format, tc.follow)
		}
	}
}
