package orchestrator

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/source"
)

func TestReachMap(t *testing.T) {
	sources := []string{"/images/a.img", "/san/b.img", "nbd://10.0.0.5:10809"}
	all := source.AllTransports()
	tests := []struct {
		caps string
		want map[string][]source.Transport
	}{
		{`{}`, map[string][]source.Transport{scheduler.AnySource: all}},
		{`{"transports":["nbd"]}`, map[string][]source.Transport{scheduler.AnySource: {"nbd"}}},
		{`{"reach":["/images/"]}`, map[string][]source.Transport{"/images/a.img": all}},
		{`{"reach":["/san/","nbd://10.0.0.5"],"transports":["direct","nbd"]}`,
			map[string][]source.Transport{"/san/b.img": {"direct", "nbd"}, "nbd://10.0.0.5:10809": {"direct", "nbd"}}},
		{`{"reach":["/elsewhere/"]}`, map[string][]source.Transport{}},
		{`not json`, map[string][]source.Transport{scheduler.AnySource: all}},
	}
	for _, tc := range tests {
		tc.want[mountSource] = source.AllTransports() // every proxy serves mounts unless it says no_mount
		got := parseCaps(json.RawMessage(tc.caps)).reachMap(sources)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.caps, got, tc.want)
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
	all := source.AllTransports()
	tests := []struct {
		caps string
		want map[string][]source.Transport
	}{
		{`{}`, map[string][]source.Transport{scheduler.AnySource: all, in: nil, out: nil, dev: nil}},
		{`{"restore_roots":["/restores"]}`, map[string][]source.Transport{scheduler.AnySource: all, in: all, out: nil, dev: nil}},
		{`{"restore_roots":["/restores/vm1/disk.img"]}`, map[string][]source.Transport{scheduler.AnySource: all, in: nil, out: nil, dev: nil}},
		{`{"reach":["/"],"restore_devices":["/dev/sdb"]}`, map[string][]source.Transport{"/images/a.img": all, in: nil, out: nil, dev: all}},
	}
	for _, tc := range tests {
		tc.want[mountSource] = source.AllTransports()
		got := parseCaps(json.RawMessage(tc.caps)).reachMap(sources)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.caps, got, tc.want)
		}
	}
}
