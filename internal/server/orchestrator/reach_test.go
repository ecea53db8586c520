package orchestrator

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/scheduler"
)

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"/images/../images/vm1.img":                 "/images/vm1.img",
		"nbd://10.0.0.5:10809/disk0":                "nbd://10.0.0.5:10809",
		"nbds://host/x":                             "nbds://host",
		"nbd+unix:///disk?socket=/run/vm1/nbd.sock": "nbd+unix:///run/vm1/nbd.sock",
	} {
		if got := sourceKey(in); got != want {
			t.Errorf("sourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReachMap(t *testing.T) {
	sources := []string{"/images/a.img", "/san/b.img", "nbd://10.0.0.5:10809"}
	all := allTransports
	tests := []struct {
		caps string
		want map[string][]string
	}{
		{`{}`, map[string][]string{scheduler.AnySource: all}},
		{`{"transports":["nbd"]}`, map[string][]string{scheduler.AnySource: {"nbd"}}},
		{`{"reach":["/images/"]}`, map[string][]string{"/images/a.img": all}},
		{`{"reach":["/san/","nbd://10.0.0.5"],"transports":["direct","nbd"]}`,
			map[string][]string{"/san/b.img": {"direct", "nbd"}, "nbd://10.0.0.5:10809": {"direct", "nbd"}}},
		{`{"reach":["/elsewhere/"]}`, map[string][]string{}},
		{`not json`, map[string][]string{scheduler.AnySource: all}},
	}
	for _, tc := range tests {
		tc.want[mountSource] = allTransports // every proxy serves mounts unless it says no_mount
		got := parseCaps(json.RawMessage(tc.caps)).reachMap(sources)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.caps, got, tc.want)
		}
	}
}

func TestDiskTransports(t *testing.T) {
	tests := []struct {
		disk, pref string
		want       []string
	}{
		{"/a.img", "", []string{"direct"}},
		{"/a.img", "auto", []string{"direct"}},
		{"/a.img", "direct", []string{"direct"}},
		{"/a.img", "nbd", nil},
		{"nbd://h/x", "nbd", []string{"nbd"}},
		{"nbd://h/x", "hotadd", nil},
	}
	for _, tc := range tests {
		if got := diskTransports(tc.disk, tc.pref); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s with %q: %v, want %v", tc.disk, tc.pref, got, tc.want)
		}
	}
}

func TestReachMapNoMount(t *testing.T) {
	got := parseCaps(json.RawMessage(`{"no_mount":true}`)).reachMap(nil)
	if ts, ok := got[mountSource]; !ok || len(ts) != 0 {
		t.Errorf("no_mount: %v", got)
	}
}

// TestReachMapRestores: restore targets go only to proxies with a restore
// root above them (or that device), whatever their reach says.
func TestReachMapRestores(t *testing.T) {
	in, out, dev := restoreKey("/restores/vm1/disk.img"), restoreKey("/etc/ssh/authorized_keys"), restoreKey("/dev/sdb")
	sources := []string{in, out, dev, "/images/a.img"}
	all := allTransports
	tests := []struct {
		caps string
		want map[string][]string
	}{
		{`{}`, map[string][]string{scheduler.AnySource: all, in: nil, out: nil, dev: nil}},
		{`{"restore_roots":["/restores"]}`, map[string][]string{scheduler.AnySource: all, in: all, out: nil, dev: nil}},
		{`{"restore_roots":["/restores/vm1/disk.img"]}`, map[string][]string{scheduler.AnySource: all, in: nil, out: nil, dev: nil}},
		{`{"reach":["/"],"restore_devices":["/dev/sdb"]}`, map[string][]string{"/images/a.img": all, in: nil, out: nil, dev: all}},
	}
	for _, tc := range tests {
		tc.want[mountSource] = allTransports
		got := parseCaps(json.RawMessage(tc.caps)).reachMap(sources)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.caps, got, tc.want)
		}
	}
}
