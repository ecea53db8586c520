package vsphere_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/vim25/types"
)

func TestSelectorMatch(t *testing.T) {
	vm := func(path, ref string) vsphere.InventoryVM {
		return vsphere.InventoryVM{Name: path[len(path)-len(lastElem(path)):], Path: path,
			Ref: types.ManagedObjectReference{Type: "VirtualMachine", Value: ref}}
	}
	web := vm("/DC0/vm/prod/web1", "vm-1")
	db := vm("/DC0/vm/prod/db/db1", "vm-2")
	other := vm("/DC0/vm/production/web2", "vm-3")
	gold := map[string]bool{"vm-2": true}
	tests := []struct {
		sel  vsphere.Selector
		vm   vsphere.InventoryVM
		want bool
		err  bool
	}{
		{vsphere.Selector{}, web, true, false},
		{vsphere.Selector{Pattern: "web*"}, web, true, false},
		{vsphere.Selector{Pattern: "web*"}, db, false, false},
		{vsphere.Selector{Pattern: "web1"}, web, true, false},
		{vsphere.Selector{Pattern: "prod/*"}, web, false, false}, // a glob on the name, not the path
		{vsphere.Selector{Folder: "/DC0/vm/prod"}, web, true, false},
		{vsphere.Selector{Folder: "/DC0/vm/prod/"}, db, true, false},    // recursive
		{vsphere.Selector{Folder: "/DC0/vm/prod"}, other, false, false}, // "production" is another folder
		{vsphere.Selector{Folder: "/DC0/vm"}, other, true, false},
		{vsphere.Selector{Folder: "/DC1/vm"}, web, false, false},
		{vsphere.Selector{Tag: "gold"}, db, true, false},
		{vsphere.Selector{Tag: "gold"}, web, false, false},
		{vsphere.Selector{Tag: "gold", Folder: "/DC0/vm/prod", Pattern: "db*"}, db, true, false},
		{vsphere.Selector{Tag: "gold", Folder: "/DC0/vm/prod", Pattern: "web*"}, db, false, false},
		{vsphere.Selector{Pattern: "["}, web, false, true},
	}
	for _, tc := range tests {
		got, err := tc.sel.Match(tc.vm, gold)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("%+v on %s: %v %v, want %v (error %v)", tc.sel, tc.vm.Path, got, err, tc.want, tc.err)
		}
	}
}

func lastElem(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

func TestInventoryVMURL(t *testing.T) {
	loc := vsphere.Locator{User: "backup@vsphere.local", Host: "vc:8443"}
	vm := vsphere.InventoryVM{Name: "web 1", Path: "/DC0/vm/a b/web 1"}
	got := vm.URL(loc)
	if got != "vsphere://backup@vsphere.local@vc:8443/DC0/vm/a%20b/web%201" {
		t.Fatalf("URL %s", got)
	}
	back, err := vsphere.ParseURL(got)
	if err != nil || back.Path != vm.Path || back.User != loc.User || back.Host != loc.Host {
		t.Fatalf("URL reads back as %+v, %v", back, err)
	}
}

// TestSelectVMs selects the simulator's VMs by glob, folder and tag.
func TestSelectVMs(t *testing.T) {
	sim := vcsim.Start(t, nil)
	ctx := context.Background()
	sim.Move(t, "/DC0/vm/prod", "/DC0/vm/DC0_H0_VM0")
	sim.Move(t, "/DC0/vm/prod/inner", "/DC0/vm/DC0_C0_RP0_VM1")
	sim.Tag(t, "tier", "gold", "/DC0/vm/prod/inner/DC0_C0_RP0_VM1")

	loc, err := vsphere.ParseURL(sim.URL(""))
	if err != nil {
		t.Fatal(err)
	}
	got, err := vsphere.SelectVMs(ctx, loc, sim.Options(), []vsphere.Selector{
		{Pattern: "DC0_H0_*"},
		{Folder: "/DC0/vm/prod"},
		{Tag: "gold"},
		{Tag: "tier/gold"},
		{Tag: "other/gold"},
		{Tag: "silver"},
		{Folder: "/DC0/vm/nope"},
	})
	if err != nil {
		t.Fatal(err)
	}
	paths := func(s vsphere.Selected) []string {
		var out []string
		for _, vm := range s.VMs {
			out = append(out, vm.Path)
		}
		return out
	}
	want := [][]string{
		{"/DC0/vm/DC0_H0_VM1", "/DC0/vm/prod/DC0_H0_VM0"},
		{"/DC0/vm/prod/DC0_H0_VM0", "/DC0/vm/prod/inner/DC0_C0_RP0_VM1"},
		{"/DC0/vm/prod/inner/DC0_C0_RP0_VM1"},
		{"/DC0/vm/prod/inner/DC0_C0_RP0_VM1"},
		nil, nil, nil,
	}
	for i := range want {
		if !reflect.DeepEqual(paths(got[i]), want[i]) {
			t.Errorf("selector %d: %v, want %v", i, paths(got[i]), want[i])
		}
	}
	if got[5].Note == "" || got[4].Note == "" || got[6].Note != "" {
		t.Errorf("notes: a missing tag %q, a tag of another category %q, a missing folder %q", got[5].Note, got[4].Note, got[6].Note)
	}
	if vm := got[0].VMs[1]; vm.Name != "DC0_H0_VM0" || vm.Ref.Type != "VirtualMachine" {
		t.Errorf("VM %+v", vm)
	}

	wrong := sim.Options()
	wrong.Password = "not-it"
	if _, err := vsphere.SelectVMs(ctx, loc, wrong, []vsphere.Selector{{}}); !errors.Is(err, vsphere.ErrLogin) {
		t.Errorf("wrong password: %v", err)
	}
}
