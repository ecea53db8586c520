package vsphererestore

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// cbtVM extends the simulator's VM with QueryChangedDiskAreas, answering
// the areas a test sets for one change ID (any other is refused, as a
// reset CBT refuses an old one), and counts the resets of CBT.
type cbtVM struct {
	*simulator.VirtualMachine
	mu       sync.Mutex
	changeID string
	size     int64
	areas    []types.DiskChangeExtent
	resets   int
}

func (vm *cbtVM) QueryChangedDiskAreas(_ *simulator.Context, req *types.QueryChangedDiskAreas) soap.HasFault {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	body := &methods.QueryChangedDiskAreasBody{}
	if req.ChangeId != vm.changeID {
		body.Fault_ = simulator.Fault("changeId is not valid", &types.InvalidArgument{InvalidProperty: "changeId"})
		return body
	}
	body.Res = &types.QueryChangedDiskAreasResponse{Returnval: types.DiskChangeInfo{
		StartOffset: req.StartOffset, Length: vm.size - req.StartOffset, ChangedArea: vm.areas}}
	return body
}

func (vm *cbtVM) ReconfigVMTask(ctx *simulator.Context, req *types.ReconfigVM_Task) soap.HasFault {
	if on := req.Spec.ChangeTrackingEnabled; on != nil && !*on {
		vm.mu.Lock()
		vm.resets++
		vm.mu.Unlock()
	}
	return vm.VirtualMachine.ReconfigVMTask(ctx, req)
}

// rollbackFixture is a VM restored from a point, its flat file on the
// simulator's datastore, and the point.
type rollbackFixture struct {
	sim   *vcsim.Sim
	c     *vsphere.Client
	m     *repo.Manifest
	disks []*restorefs.Disk
	data  []byte
	root  string // the datastore's directory
	flat  string // the disk's flat file
	vm    *object.VirtualMachine
	ext   *cbtVM
}

const rollbackSize = 8 * cs

func newRollbackFixture(t *testing.T) *rollbackFixture {
	t.Helper()
	ctx := context.Background()
	fx := &rollbackFixture{sim: vcsim.Start(t, nil), data: diskData(rollbackSize, 7)}
	fx.c = fx.sim.Connect(t)
	cfg := &repo.VMConfig{Platform: "vsphere", Name: "rb", CPUs: 1, MemoryMiB: 256,
		Disks: []repo.VMDisk{{Index: 0, Controller: "pvscsi", Unit: 1, CapacityBytes: rollbackSize, Datastore: "LocalDS_0"}}}
	_, fx.m, fx.disks = point(t, cfg, fx.data)
	res, err := Restore(ctx, Request{Client: fx.c, Datacenter: "DC0", Config: cfg, Disks: asDisks(fx.disks)})
	if err != nil {
		t.Fatal(err)
	}
	fx.vm = object.NewVirtualMachine(fx.c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: res.MoRef})
	var vmo mo.VirtualMachine
	if err := fx.vm.Properties(ctx, fx.vm.Reference(), []string{"config.instanceUuid"}, &vmo); err != nil {
		t.Fatal(err)
	}
	fx.m.Config.UUID = vmo.Config.InstanceUuid // the point is of this VM
	ds, err := finder(t, fx.sim).Datastore(ctx, "LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	fx.root = dsDir(t, ds)
	p, err := vsphere.ParseDatastorePath(res.Disks[0].File)
	if err != nil {
		t.Fatal(err)
	}
	fx.flat = filepath.Join(fx.root, p.Dir(), strings.TrimSuffix(filepath.Base(p.Path), ".vmdk")+"-flat.vmdk")
	sv := fx.sim.Model.Map().Get(fx.vm.Reference()).(*simulator.VirtualMachine)
	fx.ext = &cbtVM{VirtualMachine: sv, size: rollbackSize}
	fx.sim.Model.Map().Put(fx.ext)
	return fx
}

func (fx *rollbackFixture) request() RollbackRequest {
	return RollbackRequest{Client: fx.c, VM: "/DC0/vm/rb", Manifest: fx.m, Disks: fx.disks,
		DatastorePaths: map[string]string{"LocalDS_0": fx.root}, Workers: 2}
}

// scribble changes chunk 0 (data), chunk 1 (zero in the point) and
// chunk 5 of the flat file, as a guest would.
func (fx *rollbackFixture) scribble(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(fx.flat, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range []int64{10, cs + 5, 5*cs + 100} {
		if _, err := f.WriteAt([]byte("guest"), off); err != nil {
			t.Fatal(err)
		}
	}
}

func (fx *rollbackFixture) equalsPoint(t *testing.T) {
	t.Helper()
	got, err := os.ReadFile(fx.flat)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, fx.data) {
		t.Error("the disk differs from the point after the rollback")
	}
}

func (fx *rollbackFixture) setCBT(t *testing.T, on bool) {
	t.Helper()
	task, err := fx.vm.Reconfigure(context.Background(), types.VirtualMachineConfigSpec{ChangeTrackingEnabled: types.NewBool(on)})
	if err == nil {
		err = task.Wait(context.Background())
	}
	if err != nil {
		t.Fatal(err)
	}
	fx.ext.mu.Lock()
	fx.ext.resets = 0
	fx.ext.mu.Unlock()
}

// TestRollbackCompare: without CBT every chunk is compared and only the
// three changed ones are written; the disk then equals the point.
func TestRollbackCompare(t *testing.T) {
	fx := newRollbackFixture(t)
	fx.scribble(t)
	res, err := Rollback(context.Background(), fx.request())
	if err != nil {
		t.Fatal(err)
	}
	d := res.Disks[0]
	if d.Method != MethodCompare || !strings.Contains(d.Reason, "no CBT change ID") || d.ChunksCompared != 8 || d.ChunksWritten != 3 ||
		d.BytesWritten != 3*cs || d.BytesCompared != rollbackSize || res.CBTReset {
		t.Errorf("result %+v, disk %+v", res, d)
	}
	fx.equalsPoint(t)
	again, err := Rollback(context.Background(), fx.request())
	if err != nil || again.BytesWritten != 0 {
		t.Errorf("second rollback: %+v, %v; want nothing written", again, err)
	}
}

// TestRollbackCBT: with CBT only the areas changed since the point's
// change ID are compared and written, and CBT is reset before the first
// write; an unknown change ID falls back to comparing every chunk.
func TestRollbackCBT(t *testing.T) {
	fx := newRollbackFixture(t)
	fx.setCBT(t, true)
	fx.m.Disks[0].ChangeID = "52 11 22 33/7"
	fx.ext.changeID = "52 11 22 33/7"
	fx.ext.areas = []types.DiskChangeExtent{{Start: 0, Length: 4096}, {Start: cs, Length: 512}, {Start: 5*cs + 64, Length: 64}}
	fx.scribble(t)
	res, err := Rollback(context.Background(), fx.request())
	if err != nil {
		t.Fatal(err)
	}
	d := res.Disks[0]
	if d.Method != MethodCBT || d.ChunksCompared != 3 || d.ChunksWritten != 3 || d.BytesCompared != 3*cs || !res.CBTReset {
		t.Errorf("result %+v, disk %+v", res, d)
	}
	fx.equalsPoint(t)
	if fx.ext.resets != 1 {
		t.Errorf("CBT reset %d times, want once", fx.ext.resets)
	}
	var vmo mo.VirtualMachine
	if err := fx.vm.Properties(context.Background(), fx.vm.Reference(), []string{"config.changeTrackingEnabled"}, &vmo); err != nil {
		t.Fatal(err)
	}
	if on := vmo.Config.ChangeTrackingEnabled; on == nil || !*on {
		t.Error("CBT is off after the rollback")
	}

	fx.ext.areas = []types.DiskChangeExtent{{Start: rollbackSize - 512, Length: 4096}} // past the disk's end
	fx.scribble(t)
	res, err = Rollback(context.Background(), fx.request())
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Disks[0]; d.Method != MethodCompare || !strings.Contains(d.Reason, "outside") || d.ChunksWritten != 3 {
		t.Errorf("an answer past the disk: %+v", d)
	}
	fx.equalsPoint(t)

	fx.ext.changeID = "52 11 22 33/9" // the point's ID is no longer valid
	fx.scribble(t)
	res, err = Rollback(context.Background(), fx.request())
	if err != nil {
		t.Fatal(err)
	}
	if d := res.Disks[0]; d.Method != MethodCompare || !strings.Contains(d.Reason, "changeId is not valid") || d.ChunksCompared != 8 || d.ChunksWritten != 3 {
		t.Errorf("fallback: %+v", d)
	}
	fx.equalsPoint(t)
}

// TestRollbackRefusals: a running VM, a datastore without a directory, a
// VM that is not the point's, and a flat file that leads out of the
// datastore directory are refused before anything is written.
func TestRollbackRefusals(t *testing.T) {
	fx := newRollbackFixture(t)
	outside := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(outside, make([]byte, rollbackSize), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(t *testing.T, req *RollbackRequest) func()
		want  error
		in    string
	}{
		{"powered on", func(t *testing.T, _ *RollbackRequest) func() {
			powerOn(t, fx.vm)
			return func() { powerOff(t, fx.vm) }
		}, ErrPoweredOn, "power it off first"},
		{"no datastore path", func(_ *testing.T, req *RollbackRequest) func() {
			req.DatastorePaths = nil
			return func() {}
		}, ErrNoDatastorePath, "--datastore-path LocalDS_0=DIR"},
		{"another VM", func(_ *testing.T, req *RollbackRequest) func() {
			m := *fx.m
			cfg := *m.Config
			cfg.UUID = "5000aaaa-0000-0000-0000-000000000000"
			m.Config = &cfg
			req.Manifest = &m
			return func() {}
		}, ErrMismatch, "--force"},
		{"symlink out", func(t *testing.T, _ *RollbackRequest) func() {
			saved := fx.flat + ".saved"
			if err := os.Rename(fx.flat, saved); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(outside, fx.flat); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := os.Rename(saved, fx.flat); err != nil {
					t.Fatal(err)
				}
			}
		}, ErrEscape, "symbolic link"},
	}
	fx.scribble(t)
	want, err := os.ReadFile(fx.flat)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := fx.request()
			undo := tc.setup(t, &req)
			_, err := Rollback(context.Background(), req)
			undo()
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.in) {
				t.Fatalf("error %v, want %v containing %q", err, tc.want, tc.in)
			}
			if got, _ := os.ReadFile(fx.flat); !bytes.Equal(got, want) {
				t.Error("the refused rollback wrote the disk")
			}
		})
	}
	if got, _ := os.ReadFile(outside); !bytes.Equal(got, make([]byte, rollbackSize)) {
		t.Error("the file outside the datastore was written")
	}
}

func powerOn(t *testing.T, vm *object.VirtualMachine) {
	t.Helper()
	task, err := vm.PowerOn(context.Background())
	if err == nil {
		err = task.Wait(context.Background())
	}
	if err != nil {
		t.Fatal(err)
	}
}

func powerOff(t *testing.T, vm *object.VirtualMachine) {
	t.Helper()
	task, err := vm.PowerOff(context.Background())
	if err == nil {
		err = task.Wait(context.Background())
	}
	if err != nil {
		t.Fatal(err)
	}
}
