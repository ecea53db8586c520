package vsphererestore

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
)

const cs = repo.MinChunkSize

// diskData is n bytes of pseudo-random data with a zero chunk at 1 and a
// zero tail after 3/4 of it.
func diskData(n int, seed uint64) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range b[:3*n/4] {
		b[i] = byte(rng.Uint32())
	}
	clear(b[cs : 2*cs])
	return b
}

// point backs up the disks with cfg recorded and returns the repository,
// the manifest and the point's disks opened through restorefs.
func point(t *testing.T, cfg *repo.VMConfig, data ...[]byte) (*repo.Repository, *repo.Manifest, []*restorefs.Disk) {
	t.Helper()
	return pointTB(t, cfg, data...)
}

func pointTB(t testing.TB, cfg *repo.VMConfig, data ...[]byte) (*repo.Repository, *repo.Manifest, []*restorefs.Disk) {
	t.Helper()
	ctx := context.Background()
	r := testrepo.New(t, nil)
	var disks []source.Disk
	for _, d := range data {
		disks = append(disks, memdisk.New(bytes.Clone(d)))
	}
	m, err := pipeline.BackupPoint(ctx, r, pipeline.PointRequest{VM: "vm1", Disks: disks, ChunkSize: cs, Config: cfg}, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*restorefs.Disk
	for i := range m.Disks {
		d, err := restorefs.OpenDisk(ctx, r, m, i, restorefs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		out = append(out, d)
	}
	return r, m, out
}

// dsDir returns the local directory of the simulator's datastore.
func dsDir(t *testing.T, c *object.Datastore) string {
	t.Helper()
	var m mo.Datastore
	if err := c.Properties(context.Background(), c.Reference(), []string{"info"}, &m); err != nil {
		t.Fatal(err)
	}
	return m.Info.GetDatastoreInfo().Url
}

// finder is a finder on the simulator's DC0.
func finder(t *testing.T, sim *vcsim.Sim) *find.Finder {
	t.Helper()
	c := sim.Connect(t)
	f := find.NewFinder(c.Client, false)
	dc, err := f.Datacenter(context.Background(), "DC0")
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	return f
}

// asDisks returns the point's disks as Request.Disks.
func asDisks(ds []*restorefs.Disk) []Disk {
	out := make([]Disk, len(ds))
	for i, d := range ds {
		out[i] = d
	}
	return out
}
