package vsphere_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// simDisk is a VM of the simulator with content in its first disk.
type simDisk struct {
	sim     *vcsim.Sim
	client  *vsphere.Client
	vm      *object.VirtualMachine
	disk    vsphere.SnapshotDisk
	dsDir   string // the datastore's local directory
	flat    string // the disk's flat file
	content []byte // what the test wrote at the start of the disk
}

// newSimDisk starts a simulator and writes a random MiB at the start of
// DC0_H0_VM0's disk and 4 KiB at its end (the flat file is sparse).
func newSimDisk(t *testing.T) *simDisk {
	t.Helper()
	s := startSimDisk(t)
	s.content = make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range s.content {
		s.content[i] = byte(rng.Uint32())
	}
	f, err := os.OpenFile(s.flat, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(s.disk.Capacity); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(s.content, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(s.content[:4096], s.disk.Capacity-4096); err != nil {
		t.Fatal(err)
	}
	return s
}

// startSimDisk starts a simulator and finds DC0_H0_VM0's first disk, its
// datastore directory and flat file.
func startSimDisk(t testing.TB) *simDisk {
	t.Helper()
	sim := vcsim.Start(t, nil)
	return simVMDisk(t, sim, sim.Connect(t), "DC0_H0_VM0")
}

// simVMDisk finds the first disk of a VM of datacenter DC0.
func simVMDisk(t testing.TB, sim *vcsim.Sim, c *vsphere.Client, vmName string) *simDisk {
	t.Helper()
	ctx := context.Background()
	finder := find.NewFinder(c.Client)
	dc, err := finder.Datacenter(ctx, "DC0")
	if err != nil {
		t.Fatal(err)
	}
	finder.SetDatacenter(dc)
	vm, err := finder.VirtualMachine(ctx, vmName)
	if err != nil {
		t.Fatal(err)
	}
	devices, err := vm.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	disks := devices.SelectByType((*types.VirtualDisk)(nil))
	if len(disks) == 0 {
		t.Fatalf("simulator VM %s has no disk", vmName)
	}
	vd := disks[0].(*types.VirtualDisk)
	name := vd.Backing.(types.BaseVirtualDeviceFileBackingInfo).GetVirtualDeviceFileBackingInfo().FileName
	p, err := vsphere.ParseDatastorePath(name)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := finder.Datastore(ctx, p.Datastore)
	if err != nil {
		t.Fatal(err)
	}
	var mds mo.Datastore
	if err := ds.Properties(ctx, ds.Reference(), []string{"info"}, &mds); err != nil {
		t.Fatal(err)
	}
	s := &simDisk{sim: sim, client: c, vm: vm, dsDir: mds.Info.GetDatastoreInfo().Url,
		disk: vsphere.SnapshotDisk{Key: vd.Key, File: p, Datacenter: "DC0", Capacity: vd.CapacityInBytes}}
	s.flat = filepath.Join(s.dsDir, strings.TrimSuffix(p.Path, ".vmdk")+"-flat.vmdk")
	fixSimDescriptor(t, filepath.Join(s.dsDir, p.Path))
	return s
}

// fixSimDescriptor writes parentCID=ffffffff, as ESXi does for a base
// disk, where the simulator writes parentCID=00000000 (its zero value),
// which the VMDK reader takes for a delta disk.
func fixSimDescriptor(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fixed := bytes.Replace(b, []byte("parentCID=00000000"), []byte("parentCID=ffffffff"), 1)
	if err := os.WriteFile(path, fixed, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (s *simDisk) env() *vsphere.Env {
	return &vsphere.Env{Client: s.client, VM: s.vm}
}

// checkContent reads the disk's written ranges and a hole.
func (s *simDisk) checkContent(t *testing.T, d interface {
	ReadAt([]byte, int64) (int, error)
	Size() int64
}) {
	t.Helper()
	if d.Size() != s.disk.Capacity {
		t.Fatalf("Size = %d, want %d", d.Size(), s.disk.Capacity)
	}
	got := make([]byte, len(s.content))
	if _, err := d.ReadAt(got, 0); err != nil || !bytes.Equal(got, s.content) {
		t.Fatalf("first MiB differs (err %v)", err)
	}
	if _, err := d.ReadAt(got[:4096], s.disk.Capacity-4096); err != nil || !bytes.Equal(got[:4096], s.content[:4096]) {
		t.Fatalf("last 4 KiB differ (err %v)", err)
	}
	if _, err := d.ReadAt(got, 1<<30); err != nil || !bytes.Equal(got, make([]byte, len(got))) {
		t.Fatalf("a hole does not read as zeros (err %v)", err)
	}
}
