package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/holdfast-backup/holdfast/internal/vsphererestore"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vspherePoint writes a point of a vSphere VM (one 2 MiB disk on pvscsi
// 0:0, one NIC on "VM Network") into the test repository, as a vSphere
// backup records it, and returns its ID and the disk's bytes.
func vspherePoint(t *testing.T, e *env) (string, []byte) {
	t.Helper()
	e.init("--chunk-size", "256KiB")
	ctx := context.Background()
	r, err := repo.Open(ctx, storage.NewLocal(e.repo), []byte("correct horse"), repo.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data := pseudoRandom(11, 2<<20)
	clear(data[256<<10 : 768<<10]) // zero chunks
	cfg := &repo.VMConfig{Platform: "vsphere", Name: "app1", GuestID: "otherLinux64Guest", CPUs: 2, MemoryMiB: 512, Firmware: "bios",
		Disks: []repo.VMDisk{{Index: 0, Controller: "pvscsi", Unit: 0, CapacityBytes: 2 << 20, Thin: true, Datastore: "LocalDS_0"}},
		NICs:  []repo.VMNIC{{Model: "vmxnet3", Network: "VM Network", MAC: "00:50:56:01:02:03"}}}
	m, err := pipeline.BackupPoint(ctx, r, pipeline.PointRequest{VM: "app1", Disks: []source.Disk{memdisk.New(bytes.Clone(data))},
		ChunkSize: 256 << 10, Config: cfg}, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m.ID, data
}

// TestVSphereRestoreCLI drives the real binary against an in-process
// simulator: a restore to vSphere (new name, mapped network, power on,
// --json), a second one refused without --force, a wrong password, and a
// rollback into the restored VM (refused while it runs and without
// --datastore-path; then only the changed chunks written).
func TestVSphereRestoreCLI(t *testing.T) {
	e := newEnv(t)
	id, data := vspherePoint(t, e)
	sim := vcsim.Start(t, nil)
	c := sim.Connect(t)
	ctx := context.Background()
	e.vars = append(e.vars, envVSpherePassword+"="+vcsim.Password)
	restore := []string{"restore", id, "--to-vsphere", sim.URL("/DC0"), "--tls-thumbprint", sim.Thumbprint,
		"--name", "app1-copy", "--network", "VM Network=DC0_DVPG0", "--power-on"}

	var out vsphereRestoreJSON
	if err := json.Unmarshal([]byte(e.ok(append(restore, "--json")...)), &out); err != nil {
		t.Fatal(err)
	}
	if out.Point != id || out.VM != "app1-copy" || !out.PoweredOn || out.BytesUploaded != 2<<20 || len(out.Disks) != 1 ||
		len(out.NICs) != 1 || out.NICs[0].Network != "DC0_DVPG0" || out.MACsKept {
		t.Fatalf("restore result %+v", out.Result)
	}
	f := find.NewFinder(c.Client, false)
	vm, err := f.VirtualMachine(ctx, "/DC0/vm/app1-copy")
	if err != nil {
		t.Fatal(err)
	}
	var vmo mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config", "runtime.powerState"}, &vmo); err != nil {
		t.Fatal(err)
	}
	if vmo.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || vmo.Config.Hardware.NumCPU != 2 || vmo.Config.Hardware.MemoryMB != 512 {
		t.Errorf("VM %s, %d CPUs, %d MiB", vmo.Runtime.PowerState, vmo.Config.Hardware.NumCPU, vmo.Config.Hardware.MemoryMB)
	}
	ds, err := f.Datastore(ctx, "/DC0/datastore/LocalDS_0")
	if err != nil {
		t.Fatal(err)
	}
	var dso mo.Datastore
	if err := ds.Properties(ctx, ds.Reference(), []string{"info"}, &dso); err != nil {
		t.Fatal(err)
	}
	root := dso.Info.GetDatastoreInfo().Url
	file, err := vsphere.ParseDatastorePath(out.Disks[0].File)
	if err != nil {
		t.Fatal(err)
	}
	flat := filepath.Join(root, strings.TrimSuffix(file.Path, ".vmdk")+"-flat.vmdk")
	if got, err := os.ReadFile(flat); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the uploaded disk differs from the point (%v)", err)
	}

	r := e.run(restore...)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--force") {
		t.Errorf("a second restore of the same name: exit %d, %s", r.code, r.stderr)
	}
	bad := newEnvLike(e, envVSpherePassword+"=not-the-password")
	if r := bad.run(restore...); r.code != exitFailure || !strings.Contains(r.stderr, "incorrect user name or password") ||
		strings.Contains(r.stderr, "not-the-password") {
		t.Errorf("wrong password: exit %d, %s", r.code, r.stderr)
	}

	rollback := []string{"restore", id, "--rollback", sim.URL("/DC0/vm/app1-copy"), "--tls-thumbprint", sim.Thumbprint}
	if r := e.run(rollback...); r.code != exitUsage || !strings.Contains(r.stderr, "--datastore-path") {
		t.Errorf("rollback without --datastore-path: exit %d, %s", r.code, r.stderr)
	}
	rollback = append(rollback, "--datastore-path", "LocalDS_0="+root)
	if r := e.run(rollback...); r.code != exitFailure || !strings.Contains(r.stderr, "power it off first") {
		t.Errorf("rollback of a running VM: exit %d, %s", r.code, r.stderr)
	}
	task, err := vm.PowerOff(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	scribbleFile(t, flat, 100, 1<<20+7) // a data chunk and a zero chunk
	var rb vsphereRollbackJSON
	if err := json.Unmarshal([]byte(e.ok(append(rollback, "--json")...)), &rb); err != nil {
		t.Fatal(err)
	}
	d := rb.Disks[0]
	if !rb.Rollback || d.Method != vsphererestore.MethodCompare || d.ChunksCompared != 8 || d.ChunksWritten != 2 ||
		rb.BytesWritten != 512<<10 || rb.BytesCompared != 2<<20 {
		t.Errorf("rollback result %+v, disk %+v", rb.RollbackResult, d)
	}
	if got, _ := os.ReadFile(flat); !bytes.Equal(got, data) {
		t.Error("the disk differs from the point after the rollback")
	}
	text := e.ok(rollback...)
	if !strings.Contains(text, "by comparing every chunk") || !strings.Contains(text, "wrote 0 B") {
		t.Errorf("second rollback printed %q", text)
	}
}

// newEnvLike is e with extra environment variables (later ones win).
func newEnvLike(e *env, vars ...string) *env {
	e2 := *e
	e2.vars = append(append([]string(nil), e.vars...), vars...)
	return &e2
}

// scribbleFile overwrites a few bytes of path at each offset.
func scribbleFile(t *testing.T, path string, offs ...int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range offs {
		if _, err := f.WriteAt([]byte("guest wrote here"), off); err != nil {
			t.Fatal(err)
		}
	}
}
