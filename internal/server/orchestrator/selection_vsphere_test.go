package orchestrator

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// TestSelectionVSphere resolves selections from a vSphere source (the
// simulator) by glob, folder and tag, at each session: logins for the
// tasks, warnings for selections that pick nothing and for a second VM of
// a name, clear errors for a wrong password and a missing password file.
func TestSelectionVSphere(t *testing.T) {
	sim := vcsim.Start(t, nil)
	sim.Move(t, "/DC0/vm/prod", "/DC0/vm/DC0_H0_VM0")
	sim.Move(t, "/DC0/vm/prod/inner", "/DC0/vm/DC0_C0_RP0_VM1")
	sim.Tag(t, "tier", "gold", "/DC0/vm/DC0_C0_RP0_VM0")
	ctx := context.Background()
	vmAt := func(p string) *object.VirtualMachine {
		ref, err := object.NewSearchIndex(sim.Connect(t).Client).FindByInventoryPath(ctx, p)
		if err != nil || ref == nil {
			t.Fatalf("VM %s: %v", p, err)
		}
		return ref.(*object.VirtualMachine)
	}
	if task, err := vmAt("/DC0/vm/DC0_H0_VM1").Rename(ctx, "bad name"); err != nil || task.Wait(ctx) != nil {
		t.Fatalf("rename: %v", err)
	}

	or, store := newTestOrchestrator(t, newFakeClock(time.Now()))
	dir := t.TempDir()
	good, wrong := filepath.Join(dir, "good"), filepath.Join(dir, "wrong")
	for p, pw := range map[string]string{good: vcsim.Password + "\n", wrong: "not-the-password\n"} {
		if err := os.WriteFile(p, []byte(pw), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	addr := sim.URL("")
	for name, file := range map[string]string{"vc": good, "vcwrong": wrong, "vcmissing": filepath.Join(dir, "missing")} {
		def, _ := json.Marshal(map[string]string{"address": addr, "password_file": file, "tls_thumbprint": sim.Thumbprint})
		if _, err := store.CreateSource(ctx, configdb.Source{Name: name, Kind: "vsphere", Definition: def}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.CreateSource(ctx, configdb.Source{Name: "images", Kind: "image", Definition: json.RawMessage(`{"address":"` + dir + `"}`)}); err != nil {
		t.Fatal(err)
	}
	url := func(p string) []string { return []string{sim.URL(p)} }
	tests := []struct {
		sel   string
		want  map[string][]string
		warns []string
		err   string
	}{
		{`[{"source":"vc","pattern":"DC0_H0_*"}]`, map[string][]string{"DC0_H0_VM0": url("/DC0/vm/prod/DC0_H0_VM0")}, nil, ""},
		{`[{"source":"vc","folder":"/DC0/vm/prod"},{"source":"vc","tag":"tier/gold"}]`, map[string][]string{
			"DC0_H0_VM0":     url("/DC0/vm/prod/DC0_H0_VM0"),
			"DC0_C0_RP0_VM1": url("/DC0/vm/prod/inner/DC0_C0_RP0_VM1"),
			"DC0_C0_RP0_VM0": url("/DC0/vm/DC0_C0_RP0_VM0")}, nil, ""},
		{`[{"source":"vc","folder":"/DC0/vm/prod","pattern":"*VM1"}]`, map[string][]string{
			"DC0_C0_RP0_VM1": url("/DC0/vm/prod/inner/DC0_C0_RP0_VM1")}, nil, ""},
		{`[{"source":"vc","pattern":"nomatch*"},{"source":"vc","tag":"silver"},{"source":"vc","pattern":"DC0_C0_RP0_VM0"}]`,
			map[string][]string{"DC0_C0_RP0_VM0": url("/DC0/vm/DC0_C0_RP0_VM0")},
			[]string{"selection vc=name:nomatch* picks no VM", "selection vc=tag:silver picks no VM (no tag silver exists)"}, ""},
		// An invalid name is selected: its VM fails alone when it runs.
		{`[{"source":"vc","pattern":"bad*"}]`, map[string][]string{"bad name": url("/DC0/vm/bad%20name")}, nil, ""},
		{`[{"source":"images","folder":"/DC0/vm"}]`, nil, nil, "vSphere source"},
		{`[{"source":"vcwrong"}]`, nil, nil, "incorrect user name or password"},
		{`[{"source":"vcmissing"}]`, nil, nil, "missing on the server: no such file or directory"},
	}
	for _, tc := range tests {
		def, err := parseDefinition(json.RawMessage(`{"repository":"r","vms":[{"name":"keep","disks":["/explicit.img"]}],"select":` + tc.sel + `}`))
		if err != nil {
			t.Fatal(err)
		}
		sel, err := or.resolveSelection(ctx, &def)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), vcsim.Password) {
				t.Errorf("%s: error %v, want %q", tc.sel, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.sel, err)
		}
		got := map[string][]string{}
		for _, vm := range def.VMs {
			if vm.Name != "keep" {
				got[vm.Name] = vm.Disks
			}
		}
		if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(sel.warnings, tc.warns) {
			t.Errorf("%s:\n got %v %q\nwant %v %q", tc.sel, got, sel.warnings, tc.want, tc.warns)
		}
		for name := range tc.want {
			if l := sel.logins[name]; l == nil || l.Password != vcsim.Password || l.Thumbprint != sim.Thumbprint {
				t.Errorf("%s: login of %s: %+v", tc.sel, name, l)
			}
		}
		if sel.logins["keep"] != nil {
			t.Errorf("a listed image VM got a vSphere login")
		}
	}

	// A second VM of a selected name is not backed up, with a warning.
	prod, err := object.NewSearchIndex(sim.Connect(t).Client).FindByInventoryPath(ctx, "/DC0/vm/prod")
	if err != nil || prod == nil {
		t.Fatalf("folder: %v", err)
	}
	task, err := vmAt("/DC0/vm/DC0_C0_RP0_VM0").Clone(ctx, prod.(*object.Folder), "DC0_C0_RP0_VM0", types.VirtualMachineCloneSpec{})
	if err != nil || task.Wait(ctx) != nil {
		t.Fatalf("clone: %v", err)
	}
	def, err := parseDefinition(json.RawMessage(`{"repository":"r","select":[{"source":"vc","pattern":"DC0_C0_RP0_VM0"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	sel, err := or.resolveSelection(ctx, &def)
	if err != nil || len(def.VMs) != 1 || def.VMs[0].Disks[0] != sim.URL("/DC0/vm/DC0_C0_RP0_VM0") || len(sel.warnings) != 1 ||
		!strings.Contains(sel.warnings[0], "/DC0/vm/prod/DC0_C0_RP0_VM0 of selection vc=name:DC0_C0_RP0_VM0 not backed up") {
		t.Errorf("two VMs of one name: %v %+v %q", err, def.VMs, sel.warnings)
	}
}

// TestListedVSphereLogin: a vsphere:// disk listed in a job gets the login
// of the vSphere source with its user and endpoint.
func TestListedVSphereLogin(t *testing.T) {
	or, store := newTestOrchestrator(t, newFakeClock(time.Now()))
	ctx := context.Background()
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	def, _ := json.Marshal(map[string]any{"address": "vsphere://backup@vc1.example", "password_file": pw, "insecure": true})
	if _, err := store.CreateSource(ctx, configdb.Source{Name: "vc1", Kind: "vsphere", Definition: def}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		disk string
		ok   bool
	}{
		{"vsphere://backup@vc1.example/DC0/vm/web1", true},
		{"vsphere://backup@VC1.example:443/DC0/vm/web1", true},
		{"vsphere://backup@vc1.example:8443/DC0/vm/web1", false},
		{"vsphere://other@vc1.example/DC0/vm/web1", false},
	} {
		spec, err := source.Parse(tc.disk)
		if err != nil {
			t.Fatal(err)
		}
		login, err := or.listedVSphereLogin(ctx, spec)
		if tc.ok != (err == nil) || tc.ok && (login.Password != "s3cret" || !login.Insecure) {
			t.Errorf("%s: %+v %v", tc.disk, login, err)
		}
		if err != nil && !strings.Contains(err.Error(), "no vSphere source for") {
			t.Errorf("%s: %v", tc.disk, err)
		}
	}
}
