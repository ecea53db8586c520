package vsphererestore

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
)

// BenchmarkRestoreUpload restores a 256 MiB disk, half of it zero chunks,
// to the simulator: flat (every byte sent) and sparse (the zero chunks
// left out, then converted by the simulator extension); the peer is a
// plain PUT of the same bytes from memory. b.SetBytes counts the disk's
// size, so MB/s are disk bytes restored per second.
func BenchmarkRestoreUpload(b *testing.B) {
	const size = 256 << 20
	data := diskData(size, 12)
	clear(data[size/4 : size/2])
	b.Run("plain PUT", func(b *testing.B) {
		sim := vcsim.Start(b, nil)
		c := sim.Connect(b)
		f := find.NewFinder(c.Client, false)
		ds, err := f.Datastore(context.Background(), "/DC0/datastore/LocalDS_0")
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			err := ds.Upload(context.Background(), bytes.NewReader(data), fmt.Sprintf("plain%d/disk-flat.vmdk", i),
				&soap.Upload{Method: "PUT", Type: "application/octet-stream", ContentLength: size})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, sparse := range []bool{false, true} {
		b.Run(fmt.Sprintf("sparse=%v", sparse), func(b *testing.B) {
			sim := vcsim.Start(b, nil)
			c := sim.Connect(b)
			if sparse {
				ds := sim.Model.Map().Any("Datastore").(*simulator.Datastore)
				vdm := &convertingVDM{VirtualDiskManager: sim.Model.Map().VirtualDiskManager().(*simulator.VirtualDiskManager),
					root: ds.Info.GetDatastoreInfo().Url}
				sim.Model.Map().Put(vdm)
			}
			cfg := &repo.VMConfig{Platform: "vsphere", Name: "bench", CPUs: 1, MemoryMiB: 256,
				Disks: []repo.VMDisk{{Index: 0, Controller: "pvscsi", CapacityBytes: size, Datastore: "LocalDS_0"}}}
			_, _, disks := pointTB(b, cfg, data)
			b.SetBytes(size)
			b.ResetTimer()
			var sent int64
			for i := 0; i < b.N; i++ {
				res, err := Restore(context.Background(), Request{Client: c, Datacenter: "DC0", Config: cfg, Disks: asDisks(disks),
					Name: fmt.Sprintf("bench%d", i), Sparse: sparse})
				if err != nil {
					b.Fatal(err)
				}
				sent = res.BytesUploaded
			}
			b.ReportMetric(float64(sent)/size, "sent/disk")
		})
	}
}
