package vcsim

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/vmx"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// TestNAS: with a Mount that fills the datastore's directory as a test
// chooses, CreateNasDatastore records the spec, RegisterVM_Task gives the
// VM the .vmx's hardware, RemoveDatastore refuses while the VM is
// registered and then removes and unmounts the datastore.
func TestNAS(t *testing.T) {
	ctx := context.Background()
	sim := Start(t, nil)
	var unmounted []string
	nas := &NAS{
		Mount: func(spec types.HostNasVolumeSpec, dir string) error {
			l := vmx.New("t1", nil, []int64{2 << 20})
			if err := os.Mkdir(filepath.Join(dir, "t1"), 0o755); err != nil {
				return err
			}
			files := map[string][]byte{l.VMX: l.Text, l.Disks[0].Descriptor: l.Disks[0].Text, l.Disks[0].Flat: make([]byte, 2<<20)}
			for n, b := range files {
				if err := os.WriteFile(filepath.Join(dir, "t1", n), b, 0o644); err != nil {
					return err
				}
			}
			return nil
		},
		Unmount: func(dir string) error { unmounted = append(unmounted, filepath.Base(dir)); return nil },
	}
	sim.ExtendNAS(t, nas)
	c := sim.Connect(t)
	f := find.NewFinder(c.Client, true)
	dc, err := f.Datacenter(ctx, "DC0")
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	host, err := f.HostSystem(ctx, "DC0_H0")
	if err != nil {
		t.Fatal(err)
	}
	dss, err := host.ConfigManager().DatastoreSystem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	spec := types.HostNasVolumeSpec{RemoteHost: "192.0.2.1", RemotePath: "/holdfast/x", LocalPath: "nasds", AccessMode: "readWrite", Type: "NFS"}
	ds, err := dss.CreateNasDatastore(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := nas.Created(); len(got) != 1 || got[0].RemoteHost != spec.RemoteHost || got[0].RemotePath != spec.RemotePath || got[0].LocalPath != "nasds" {
		t.Errorf("recorded %+v", got)
	}
	var dsm mo.Datastore
	if err := ds.Properties(ctx, ds.Reference(), []string{"info"}, &dsm); err != nil {
		t.Fatal(err)
	}
	if info, ok := dsm.Info.(*types.NasDatastoreInfo); !ok || info.Nas.RemoteHost != "192.0.2.1" || info.Nas.RemotePath != "/holdfast/x" {
		t.Errorf("datastore info %+v", dsm.Info)
	}

	folders, err := dc.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := host.ResourcePool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	task, err := folders.VmFolder.RegisterVM(ctx, "[nasds] t1/t1.vmx", "t1", false, pool, host)
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vm := object.NewVirtualMachine(c.Client, info.Result.(types.ManagedObjectReference))
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config"}, &m); err != nil {
		t.Fatal(err)
	}
	var disks []int64
	for _, d := range m.Config.Hardware.Device {
		if d, ok := d.(*types.VirtualDisk); ok {
			disks = append(disks, d.CapacityInBytes)
		}
	}
	if m.Config.Hardware.MemoryMB != vmx.DefaultMemoryMiB || m.Config.Hardware.NumCPU != 1 || len(disks) != 1 || disks[0] != 2<<20 {
		t.Errorf("VM: %d MiB, %d CPUs, disks %v", m.Config.Hardware.MemoryMB, m.Config.Hardware.NumCPU, disks)
	}
	if _, err := os.Stat(filepath.Join(nas.Mounted()["nasds"], "t1", "t1.nvram")); err != nil {
		t.Errorf("no .nvram created: %v", err)
	}

	if err := dss.Remove(ctx, ds); !fault.Is(err, &types.ResourceInUse{}) {
		t.Errorf("RemoveDatastore with a registered VM: %v", err)
	}
	if err := vm.Unregister(ctx); err != nil {
		t.Fatal(err)
	}
	if err := dss.Remove(ctx, ds); err != nil {
		t.Fatal(err)
	}
	if len(unmounted) != 1 || unmounted[0] != "nasds" || len(nas.Mounted()) != 0 || len(nas.Removed()) != 1 {
		t.Errorf("unmounted %v, mounted %v, removed %v", unmounted, nas.Mounted(), nas.Removed())
	}
	if _, err := f.Datastore(ctx, "nasds"); err == nil {
		t.Error("the datastore is still listed")
	}
}
