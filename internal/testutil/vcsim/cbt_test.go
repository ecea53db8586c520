package vcsim

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// snapshotChange takes a snapshot and returns it with its disk's change ID.
func snapshotChange(t *testing.T, vm *object.VirtualMachine, name string) (types.ManagedObjectReference, string) {
	t.Helper()
	ctx := context.Background()
	task, err := vm.CreateSnapshot(ctx, name, "", false, false)
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResult(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := info.Result.(types.ManagedObjectReference)
	var snap mo.VirtualMachineSnapshot
	if err := vm.Properties(ctx, ref, []string{"config"}, &snap); err != nil {
		t.Fatal(err)
	}
	for _, d := range snap.Config.Hardware.Device {
		if vd, ok := d.(*types.VirtualDisk); ok {
			return ref, vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId
		}
	}
	t.Fatal("no disk")
	return ref, ""
}

// changed collects the areas of every page of an answer.
func changed(vm *object.VirtualMachine, snap types.ManagedObjectReference, key int32, id string) (string, int, error) {
	var out []string
	pages := 0
	for start := int64(0); start < 8<<20; pages++ {
		res, err := methods.QueryChangedDiskAreas(context.Background(), vm.Client(), &types.QueryChangedDiskAreas{
			This: vm.Reference(), Snapshot: &snap, DeviceKey: key, StartOffset: start, ChangeId: id})
		if err != nil {
			return "", pages, err
		}
		for _, a := range res.Returnval.ChangedArea {
			out = append(out, fmt.Sprintf("%d+%d", a.Start, a.Length))
		}
		start = res.Returnval.StartOffset + res.Returnval.Length
	}
	return strings.Join(out, " "), pages, nil
}

func TestCBT(t *testing.T) {
	sim := Start(t, nil)
	cbt := sim.CBT()
	cbt.PageSize = 2 << 20
	const name = "DC0_H0_VM0"
	sim.SetDiskCapacity(t, name, 0, 8<<20)
	sim.WriteDisk(t, name, 0, 64<<10, []byte("a"))
	sim.WriteDisk(t, name, 0, 5<<20, make([]byte, 100)) // zeros: not allocated
	sim.WriteDisk(t, name, 0, 6<<20, []byte("b"))
	ctx := context.Background()
	c := sim.Connect(t)
	vm, err := find.NewFinder(c.Client).VirtualMachine(ctx, "/DC0/vm/"+name)
	if err != nil {
		t.Fatal(err)
	}
	key := sim.Disks(t, name)[0].Key

	if _, id := snapshotChange(t, vm, "off"); id != "" {
		t.Fatalf("change ID %q with CBT off", id)
	}
	on := true
	task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: &on})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	snap1, id1 := snapshotChange(t, vm, "one")
	all, pages, err := changed(vm, snap1, key, "*")
	if err != nil || all != fmt.Sprintf("%d+%d %d+%d", 64<<10, 64<<10, 6<<20, 64<<10) || pages != 4 {
		t.Fatalf("allocated %q in %d pages, %v", all, pages, err)
	}

	sim.WriteDisk(t, name, 0, 64<<10, []byte{0})      // back to zeros
	sim.WriteDisk(t, name, 0, 3<<20+10, []byte("cc")) // new
	snap2, id2 := snapshotChange(t, vm, "two")
	if strings.Split(id1, "/")[0] != strings.Split(id2, "/")[0] || id1 == id2 {
		t.Errorf("change IDs %q, %q: want one instance, two sequence numbers", id1, id2)
	}
	got, _, err := changed(vm, snap2, key, id1)
	if err != nil || got != fmt.Sprintf("%d+%d %d+%d", 64<<10, 64<<10, 3<<20, 64<<10) {
		t.Errorf("changed since %s: %q %v", id1, got, err)
	}

	cbt.Forget()
	if _, _, err := changed(vm, snap2, key, id1); !fault.Is(err, &types.FileFault{}) {
		t.Errorf("forgotten ID: %v, want a FileFault", err)
	}
	cbt.Reset()
	if _, id3 := snapshotChange(t, vm, "three"); strings.Split(id3, "/")[0] == strings.Split(id2, "/")[0] {
		t.Errorf("change ID %q after a reset keeps the instance of %q", id3, id2)
	}
}
