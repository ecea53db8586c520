package esxi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// fixture is a serving session, a simulator extended with NAS and a
// client of it.
type fixture struct {
	s      *session
	sim    *vcsim.Sim
	nas    *vcsim.NAS
	kernel bool
	c      *vsphere.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := serve(t)
	sim := vcsim.Start(t, nil)
	nas, kernel := s.nas(t)
	sim.ExtendNAS(t, nas)
	return &fixture{s: s, sim: sim, nas: nas, kernel: kernel, c: sim.Connect(t)}
}

func (f *fixture) target(t *testing.T, path string) vsphere.Locator {
	t.Helper()
	loc, err := vsphere.ParseURL(f.sim.URL(path))
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func (f *fixture) vm(t *testing.T, ref string) mo.VirtualMachine {
	t.Helper()
	var m mo.VirtualMachine
	obj := object.NewVirtualMachine(f.c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: ref})
	if err := obj.Properties(context.Background(), obj.Reference(), []string{"name", "config", "runtime", "datastore"}, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// registered reports whether a VM with this .vmx path is registered.
func (f *fixture) registered(t *testing.T, vmPath string) bool {
	t.Helper()
	ctx := context.Background()
	dc, err := find.NewFinder(f.c.Client, true).Datacenter(ctx, "DC0")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := object.NewSearchIndex(f.c.Client).FindByDatastorePath(ctx, dc, vmPath)
	if err != nil {
		t.Fatal(err)
	}
	return ref != nil
}

func (f *fixture) datastoreExists(t *testing.T, name string) bool {
	t.Helper()
	fd := find.NewFinder(f.c.Client, true)
	dc, err := fd.Datacenter(context.Background(), "DC0")
	if err != nil {
		t.Fatal(err)
	}
	fd.SetDatacenter(dc)
	_, err = fd.Datastore(context.Background(), name)
	var nf *find.NotFoundError
	if err != nil && !errors.As(err, &nf) {
		t.Fatal(err)
	}
	return err == nil
}

// TestAttachStopCycle: the export is mounted as an NFS datastore on a
// host of the cluster, the VM registered from its .vmx with the recorded
// hardware and powered on; Detach powers it off, unregisters it (its
// files stay) and removes the datastore, and nothing stays mounted.
func TestAttachStopCycle(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id := f.s.rec.ID
	rec, err := Attach(ctx, f.c, f.s.reg, id, Options{Target: f.target(t, "/DC0/host/DC0_C0/DC0_C0_H1"),
		RemoteHost: "127.0.0.1", PowerOn: true})
	if err != nil {
		t.Fatal(err)
	}
	created := f.nas.Created()
	if len(created) != 1 {
		t.Fatalf("CreateNasDatastore calls: %+v", created)
	}
	spec := created[0]
	if spec.RemoteHost != "127.0.0.1" || spec.RemotePath != "/holdfast/"+id || spec.Type != "NFS" ||
		spec.AccessMode != "readWrite" || spec.LocalPath != "holdfast-"+id {
		t.Errorf("NAS spec %+v", spec)
	}
	er := rec.ESXi
	if er == nil || er.DatastoreRef == "" || er.VMRef == "" || er.VMPath != "[holdfast-"+id+"] web-01/web-01.vmx" ||
		er.VMName != "web-01-"+id || er.Removed {
		t.Fatalf("recorded %+v", er)
	}
	vm := f.vm(t, er.VMRef)
	hw := vm.Config.Hardware
	if vm.Name != er.VMName || hw.NumCPU != 2 || hw.MemoryMB != 3072 || vm.Config.Firmware != "efi" ||
		vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		t.Errorf("VM %s: %d CPUs, %d MiB, firmware %s, %s", vm.Name, hw.NumCPU, hw.MemoryMB, vm.Config.Firmware, vm.Runtime.PowerState)
	}
	if host := vm.Runtime.Host; host == nil || host.Value != er.Host {
		t.Errorf("VM on host %v, want %s", host, er.Host)
	}
	var disks []*types.VirtualDisk
	var nets []string
	for _, d := range hw.Device {
		switch d := d.(type) {
		case *types.VirtualDisk:
			disks = append(disks, d)
		case types.BaseVirtualEthernetCard:
			if b, ok := d.GetVirtualEthernetCard().Backing.(*types.VirtualEthernetCardNetworkBackingInfo); ok {
				nets = append(nets, b.DeviceName)
			}
		}
	}
	if len(disks) != 2 || disks[0].CapacityInBytes != 3<<20 || disks[1].CapacityInBytes != 1<<20 {
		t.Errorf("disks %+v", disks)
	}
	for i, d := range disks {
		want := "[holdfast-" + id + "] web-01/web-01-disk" + string(rune('0'+i)) + ".vmdk"
		if fn := d.Backing.(types.BaseVirtualDeviceFileBackingInfo).GetVirtualDeviceFileBackingInfo().FileName; fn != want {
			t.Errorf("disk %d backing %s, want %s", i, fn, want)
		}
	}
	if len(nets) != 1 || nets[0] != "VM Network" {
		t.Errorf("NICs on %q", nets)
	}
	// the datastore's directory shows the point's disks through the descriptors
	dir := f.nas.Mounted()["holdfast-"+id]
	for i, want := range f.s.disks {
		got, err := os.ReadFile(filepath.Join(dir, "web-01", "web-01-disk"+string(rune('0'+i))+"-flat.vmdk"))
		if err != nil || !equalBytes(got, want) {
			t.Errorf("flat extent %d: %d bytes, %v", i, len(got), err)
		}
	}
	if f.kernel { // what the host created went through NFS into the session's scratch area
		if _, err := os.Stat(filepath.Join(f.s.rec.RedoDir, instant.ScratchDir, "web-01", er.VMName+".nvram")); err != nil {
			t.Errorf("the host's .nvram is not in the scratch area: %v", err)
		}
	}

	rec, err = Detach(ctx, f.c, f.s.reg, id)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.ESXi.Removed || f.registered(t, er.VMPath) || f.datastoreExists(t, "holdfast-"+id) {
		t.Errorf("after Detach: removed %v, VM registered %v, datastore there %v", rec.ESXi.Removed,
			f.registered(t, er.VMPath), f.datastoreExists(t, "holdfast-"+id))
	}
	if m := f.nas.Mounted(); len(m) != 0 {
		t.Errorf("still mounted: %v", m)
	}
	if r := f.nas.Removed(); len(r) != 1 || r[0] != "holdfast-"+id {
		t.Errorf("RemoveDatastore calls %v", r)
	}
	if _, err := Detach(ctx, f.c, f.s.reg, id); err != nil {
		t.Errorf("a second Detach: %v", err)
	}
}

// TestDetachAfterKilledStart: a start killed after the datastore and the
// VM were made, before their references were recorded: Detach finds them
// by name and path and removes them.
func TestDetachAfterKilledStart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id := f.s.rec.ID
	rec, err := Attach(ctx, f.c, f.s.reg, id, Options{Target: f.target(t, "/DC0/host/DC0_H0"), RemoteHost: "127.0.0.1",
		Datastore: "ir-ds", VMName: "restored"})
	if err != nil {
		t.Fatal(err)
	}
	vmPath := rec.ESXi.VMPath
	if _, err := f.s.reg.Update(id, func(r *instant.Record) { r.ESXi.DatastoreRef, r.ESXi.VMRef = "", "" }); err != nil {
		t.Fatal(err)
	}
	if _, err := Detach(ctx, f.c, f.s.reg, id); err != nil {
		t.Fatal(err)
	}
	if f.registered(t, vmPath) || f.datastoreExists(t, "ir-ds") || len(f.nas.Mounted()) != 0 {
		t.Errorf("left: VM %v, datastore %v, mounts %v", f.registered(t, vmPath), f.datastoreExists(t, "ir-ds"), f.nas.Mounted())
	}
}

// TestAttachUndoesOnFailure: a registration that fails (the .vmx is not
// there) leaves no datastore behind, and the error says what failed.
func TestAttachUndoesOnFailure(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id := f.s.rec.ID
	if _, err := f.s.reg.Update(id, func(r *instant.Record) { r.VMX = "missing.vmx" }); err != nil {
		t.Fatal(err)
	}
	_, err := Attach(ctx, f.c, f.s.reg, id, Options{Target: f.target(t, "/DC0/host/DC0_H0"), RemoteHost: "127.0.0.1"})
	if err == nil || !strings.Contains(err.Error(), "register [holdfast-"+id+"] missing.vmx") {
		t.Fatalf("Attach: %v", err)
	}
	if f.datastoreExists(t, "holdfast-"+id) || len(f.nas.Mounted()) != 0 {
		t.Errorf("the datastore stayed after the failure")
	}
	rec, _ := f.s.reg.Load(id)
	if rec.ESXi == nil || !rec.ESXi.Removed {
		t.Errorf("record %+v", rec.ESXi)
	}
}

// TestMigrate: the VM is relocated to LocalDS_0, stays registered (it is
// production's now), and the NAS datastore goes.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	id := f.s.rec.ID
	if _, err := Migrate(ctx, f.c, f.s.reg, id, "LocalDS_0"); !errors.Is(err, ErrNotAttached) {
		t.Errorf("Migrate before Attach: %v", err)
	}
	rec, err := Attach(ctx, f.c, f.s.reg, id, Options{Target: f.target(t, "/DC0/host/DC0_C0"), RemoteHost: "127.0.0.1", PowerOn: true})
	if err != nil {
		t.Fatal(err)
	}
	ref := rec.ESXi.VMRef
	rec, err = Migrate(ctx, f.c, f.s.reg, id, "LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	vm := f.vm(t, ref)
	var names []string
	for _, ds := range vm.Datastore {
		var m mo.Datastore
		if err := object.NewDatastore(f.c.Client, ds).Properties(ctx, ds, []string{"name"}, &m); err != nil {
			t.Fatal(err)
		}
		names = append(names, m.Name)
	}
	if len(names) != 1 || names[0] != "LocalDS_0" || vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		t.Errorf("after Migrate the VM is on %v, %s", names, vm.Runtime.PowerState)
	}
	if rec.ESXi.MigratedTo != "LocalDS_0" || !rec.ESXi.Removed || f.datastoreExists(t, "holdfast-"+id) || len(f.nas.Mounted()) != 0 {
		t.Errorf("after Migrate: %+v, datastore there %v", rec.ESXi, f.datastoreExists(t, "holdfast-"+id))
	}
}

// TestTargets: paths that name no host or cluster are refused clearly.
func TestTargets(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for _, p := range []string{"/DC0", "/DC0/vm/DC0_H0_VM0", "/DC0/host/nope", "/NODC/host/DC0_H0"} {
		_, err := Attach(ctx, f.c, f.s.reg, f.s.rec.ID, Options{Target: f.target(t, p), RemoteHost: "127.0.0.1"})
		if err == nil {
			t.Errorf("%s accepted", p)
		}
		t.Logf("%s: %v", p, err)
	}
	if len(f.nas.Created()) != 0 {
		t.Error("a datastore was made for a bad target")
	}
	_, err := Attach(ctx, f.c, f.s.reg, f.s.rec.ID, Options{Target: f.target(t, "/DC0/host/DC0_H0"), RemoteHost: "0.0.0.0"})
	if err == nil {
		t.Error("an unspecified NFS address is accepted")
	}
}
