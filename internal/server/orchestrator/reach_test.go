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

// TestReachMapVSphere: vSphere VMs are offered to a proxy with the
// transports it reads vSphere disks with (nbd when it names none), within
// its --transports, and by --reach prefix on vsphere://host:port.
func TestReachMapVSphere(t *testing.T) {
	vc, other := "vsphere://vc1.example:443", "vsphere://vc2.example:443"
	sources := []string{"/images/a.img", vc, other}
	all := source.AllTransports()
	nbd := []source.Transport{source.TransportNBD}
	tests := []struct {
		caps string
		want map[string][]source.Transport
	}{
		{`{}`, map[string][]source.Transport{scheduler.AnySource: all, vc: nbd, other: nbd}},
		{`{"vsphere_transports":["direct","nbd"]}`, map[string][]source.Transport{scheduler.AnySource: all,
			vc: {"direct", "nbd"}, other: {"direct", "nbd"}}},
		{`{"vsphere_transports":["direct","hotadd","nbd"],"transports":["hotadd","nbd"]}`,
			map[string][]source.Transport{scheduler.AnySource: {"hotadd", "nbd"}, vc: {"hotadd", "nbd"}, other: {"hotadd", "nbd"}}},
		{`{"reach":["vsphere://vc1"],"vsphere_transports":["hotadd","nbd"]}`, map[string][]source.Transport{vc: {"hotadd", "nbd"}}},
		{`{"reach":["/images/"]}`, map[string][]source.Transport{"/images/a.img": all}},
	}
	for _, tc := range tests {
		tc.want[mountSource] = all
		got := parseCaps(json.RawMessage(tc.caps)).reachMap(sources)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.caps, got, tc.want)
		}
	}
}
