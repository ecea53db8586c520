package vsphere_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
)

// simDisk is a VM of the simulator with content in its first disk.
type simDisk struct {
	sim     *vcsim.Sim
	client  *vsphere.Client
	vm      *object.VirtualMachine
	vmName  string
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
	s.sim.WriteDisk(t, s.vmName, 0, 0, s.content)
	s.sim.WriteDisk(t, s.vmName, 0, s.disk.Capacity-4096, s.content[:4096])
	return s
}

// startSimDisk starts a simulator and finds DC0_H0_VM0's first disk.
func startSimDisk(t testing.TB) *simDisk {
	t.Helper()
	sim := vcsim.Start(t, nil)
	return simVMDisk(t, sim, sim.Connect(t), "DC0_H0_VM0")
}

// simVMDisk finds the first disk of a VM of datacenter DC0, its
// datastore directory and flat file.
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
	disks := sim.Disks(t, vmName)
	if len(disks) == 0 {
		t.Fatalf("simulator VM %s has no disk", vmName)
	}
	p, err := vsphere.ParseDatastorePath(disks[0].Descriptor)
	if err != nil {
		t.Fatal(err)
	}
	return &simDisk{sim: sim, client: c, vm: vm, vmName: vmName, dsDir: sim.DatastoreDir(t, p.Datastore), flat: disks[0].Flat,
		disk: vsphere.SnapshotDisk{Key: disks[0].Key, File: p, Datacenter: "DC0", Capacity: disks[0].Capacity}}
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
