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
	}
	for _, tc := range tests {
		_, err := parseDefinition(json.RawMessage(tc.def))
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want %q", tc.def, err, tc.err)
		}
	}
}

func TestTransportsFor(t *testing.T) {
	for in, want := range map[string]string{"/a.img": "direct", "nbd://h/x": "nbd", "nbd+unix:///x?socket=/s": "nbd",
		"nbds://h/x": "nbd+tls"} {
		if got := transportsFor(in); len(got) != 1 || got[0] != want {
			t.Errorf("%s: %v, want %s", in, got, want)
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
