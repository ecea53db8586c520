package orchestrator

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/libvirt"
	"github.com/holdfast-backup/holdfast/internal/testutil/libvirtd"
)

func TestMatchDomains(t *testing.T) {
	doms := []libvirt.Domain{
		{Name: "web1", Metadata: map[string]string{"tier": "gold"}},
		{Name: "web2", Metadata: map[string]string{"tier": "silver", "owner": ""}},
		{Name: "db1", Metadata: map[string]string{"tier": "gold"}},
		{Name: "mail"},
	}
	tests := []struct {
		sel  jobdef.Selection
		want []string
		err  string
	}{
		{jobdef.Selection{Source: "s"}, []string{"web1", "web2", "db1", "mail"}, ""},
		{jobdef.Selection{Source: "s", Pattern: "web*"}, []string{"web1", "web2"}, ""},
		{jobdef.Selection{Source: "s", Metadata: "tier=gold"}, []string{"web1", "db1"}, ""},
		{jobdef.Selection{Source: "s", Pattern: "web*", Metadata: "tier=gold"}, []string{"web1"}, ""},
		{jobdef.Selection{Source: "s", Metadata: "owner="}, []string{"web2"}, ""}, // an empty value is a value
		{jobdef.Selection{Source: "s", Metadata: "tier=Gold"}, nil, ""},           // values match exactly
		{jobdef.Selection{Source: "s", Pattern: "nothing*"}, nil, ""},
		{jobdef.Selection{Source: "s", Pattern: "["}, nil, "pattern"},
		{jobdef.Selection{Source: "s", Metadata: "tier"}, nil, "KEY=VALUE"},
	}
	for _, tc := range tests {
		got, err := matchDomains(doms, tc.sel)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v %v, want an error with %q", tc.sel, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.sel, got, err, tc.want)
		}
	}
}

// TestPinReach: a task pinned to a proxy is offered to that proxy alone,
// whatever the reach of the others (an empty reach included).
func TestPinReach(t *testing.T) {
	pinned := pinnedPrefix + "kvm1/libvirt:///web1"
	sources := []string{pinned, "libvirt:///db1", "/images/a.img"}
	all := source.AllTransports()
	tests := []struct {
		proxy, caps string
		want        map[string][]source.Transport
	}{
		{"kvm1", `{}`, map[string][]source.Transport{scheduler.AnySource: all, pinned: all}},
		{"kvm1", `{"reach":["/elsewhere/"],"transports":["hotadd","nbd"]}`, map[string][]source.Transport{pinned: {"hotadd", "nbd"}}},
		{"other", `{}`, map[string][]source.Transport{scheduler.AnySource: all, pinned: nil}},
		{"kvm", `{"reach":["libvirt://","proxy:"]}`, map[string][]source.Transport{"libvirt:///db1": all, pinned: nil}},
	}
	for _, tc := range tests {
		caps := parseCaps(json.RawMessage(tc.caps))
		got := caps.reachMap(sources)
		pinReach(got, tc.proxy, caps, sources)
		tc.want[mountSource] = all
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %s: %v, want %v", tc.proxy, tc.caps, got, tc.want)
		}
	}
	// The scheduler offers a pinned task to its proxy only.
	s := scheduler.New(nil)
	for _, p := range []string{"other", "kvm1"} {
		caps := parseCaps(json.RawMessage(`{}`))
		m := caps.reachMap(sources)
		pinReach(m, p, caps, sources)
		if err := s.AddProxy(scheduler.Proxy{ID: p, Slots: 4, Reach: m}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddRepository(scheduler.Repository{ID: "r", Slots: 4}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := s.Submit(scheduler.Task{ID: string(rune('a' + i)), JobID: "j", VM: "web1", Disk: "0", SourceID: pinned,
			RepositoryID: "r", Transports: []source.Transport{source.TransportHotAdd}}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		a, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if a.Proxy != "kvm1" {
			t.Fatalf("pinned task %s assigned to %s", a.Task.ID, a.Proxy)
		}
		if _, err := s.Done(a, nil); err != nil {
			t.Fatal(err)
		}
	}
}

// defineDomain defines (does not start) a domain with Holdfast metadata
// attrs ("" none).
func defineDomain(t *testing.T, d *libvirtd.Daemon, name, attrs string) {
	t.Helper()
	md := ""
	if attrs != "" {
		md = `<metadata><hf:backup xmlns:hf="` + libvirt.MetadataNamespace + `" ` + attrs + `/></metadata>`
	}
	x := `<domain type='qemu'><name>` + name + `</name>` + md + `<memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><controller type='usb' model='none'/><memballoon model='none'/></devices></domain>`
	f := filepath.Join(t.TempDir(), name+".xml")
	if err := os.WriteFile(f, []byte(x), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Virsh(context.Background(), "define", f); err != nil {
		t.Fatal(err)
	}
}

// TestSelectionLibvirt resolves selections from a libvirt source (a
// private libvirtd) by glob and Holdfast metadata at each session: a
// domain defined later is picked by the next resolution, a selection that
// picks nothing is a warning (and a job that selects nothing fails,
// saying so), what only other sources offer is refused.
func TestSelectionLibvirt(t *testing.T) {
	d := libvirtd.Start(t)
	defineDomain(t, d, "web1", `tier="gold"`)
	defineDomain(t, d, "web2", `tier="silver"`)
	defineDomain(t, d, "db1", `tier="gold"`)
	defineDomain(t, d, "mail", "")
	or, store := newTestOrchestrator(t, newFakeClock(time.Now()))
	ctx := context.Background()
	dir := t.TempDir()
	for _, src := range []configdb.Source{
		{Name: "kvm", Kind: "libvirt", Definition: json.RawMessage(`{"address":"qemu:///system","proxy":"kvm1","list_address":"` + d.URI + `"}`)},
		{Name: "kvm2", Kind: "libvirt", Definition: json.RawMessage(`{"address":"` + d.URI + `"}`)},
		{Name: "down", Kind: "libvirt", Definition: json.RawMessage(`{"address":"qemu+unix:///system?socket=` + filepath.Join(dir, "none.sock") + `"}`)},
		{Name: "images", Kind: "image", Definition: json.RawMessage(`{"address":"` + dir + `"}`)},
	} {
		if _, err := store.CreateSource(ctx, src); err != nil {
			t.Fatal(err)
		}
	}
	resolve := func(sel string) (jobdef.Definition, selection, error) {
		t.Helper()
		def, err := parseDefinition(json.RawMessage(`{"repository":"r","select":` + sel + `}`))
		if err != nil {
			t.Fatal(err)
		}
		s, err := or.selectVMs(ctx, &def, "j")
		return def, s, err
	}
	names := func(def jobdef.Definition) []string {
		var out []string
		for _, vm := range def.VMs {
			out = append(out, vm.Name+"="+strings.Join(vm.Disks, ","))
		}
		return out
	}
	tests := []struct {
		sel, err string
		want     []string
		warn     string
	}{
		{`[{"source":"kvm","pattern":"web*"}]`, "", []string{"web1=libvirt:///web1", "web2=libvirt:///web2"}, ""},
		{`[{"source":"kvm","metadata":"tier=gold"}]`, "", []string{"db1=libvirt:///db1", "web1=libvirt:///web1"}, ""},
		{`[{"source":"kvm","pattern":"web*","metadata":"tier=gold"}]`, "", []string{"web1=libvirt:///web1"}, ""},
		{`[{"source":"kvm","pattern":"mail"},{"source":"kvm","pattern":"x*"}]`, "", []string{"mail=libvirt:///mail"},
			"selection kvm=name:x* picks no VM (the daemon lists 4 domains)"},
		{`[{"source":"kvm","pattern":"m*"},{"source":"kvm2","pattern":"mail"}]`, "", []string{"mail=libvirt:///mail"},
			"VM libvirt:///mail on " + d.URI + " of selection kvm2=name:mail not backed up: libvirt:///mail on qemu:///system, selected before, has its name"},
		{`[{"source":"kvm","pattern":"nothing*"}]`, "selects no VMs (selection kvm=name:nothing* picks no VM (the daemon lists 4 domains))", nil, ""},
		{`[{"source":"kvm","metadata":"tier=bronze"}]`, "selects no VMs", nil, ""},
		{`[{"source":"images","metadata":"tier=gold"}]`, "metadata selects the domains of a libvirt source, not of a image source", nil, ""},
		{`[{"source":"kvm","folder":"/DC0/vm"}]`, "not of a libvirt source", nil, ""},
		{`[{"source":"down"}]`, "connect to libvirt", nil, ""},
	}
	for _, tc := range tests {
		def, s, err := resolve(tc.sel)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want an error with %q", tc.sel, err, tc.err)
			}
			continue
		}
		got := names(def)
		slices.Sort(got)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v %v, want %v", tc.sel, got, err, tc.want)
		}
		if w := strings.Join(s.warnings, "; "); w != tc.warn {
			t.Errorf("%s: warnings %q, want %q", tc.sel, w, tc.warn)
		}
		for _, vm := range def.VMs {
			if lv := s.libvirt[vm.Name]; lv == nil || lv.Address == "" {
				t.Errorf("%s: VM %s has no libvirt source", tc.sel, vm.Name)
			}
		}
	}

	// Resolved at each session: a domain defined since is picked up.
	defineDomain(t, d, "web3", `tier="gold"`)
	def, s, err := resolve(`[{"source":"kvm","pattern":"web*"}]`)
	if got := names(def); err != nil || len(got) != 3 || got[2] != "web3=libvirt:///web3" {
		t.Fatalf("after defining web3: %v %v", got, err)
	}
	// Its task is pinned to the source's proxy and carries its address.
	spec, _ := source.Parse(def.VMs[2].Disks[0])
	tr := &taskRun{vm: &vmRun{name: "web3", libvirt: s.libvirt["web3"]}, spec: spec}
	if k := tr.reachKey(); k != "proxy:kvm1/libvirt:///web3" {
		t.Errorf("reach key %q", k)
	}
	if a := s.libvirt["web3"].Address; a != "qemu:///system" {
		t.Errorf("the task dials %q, want the source's address", a)
	}
}
