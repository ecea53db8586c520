package vsphere

import (
	"context"
	"fmt"
	"path"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
)

// nbd is network mode: the snapshot's disk read over the host's HTTPS
// datastore access with ranged GETs (TLS always; the job NBDSSL does).
type nbd struct {
	connections int
}

// NewNBD returns the network-mode transport: each disk's descriptor and
// extents are read over https://HOST/folder/…?dcPath=DC&dsName=DS, a
// large read split into up to connections parallel ranged GETs.
func NewNBD(connections int) Transport {
	return &nbd{connections: max(connections, 1)}
}

func (n *nbd) Name() source.Transport { return source.TransportNBD }

// Open reads the disk's VMDK (descriptor and flat or sparse extents, or
// a monolithicSparse file) through the logged-in session.
func (n *nbd) Open(ctx context.Context, env *Env, d SnapshotDisk) (source.Disk, error) {
	files := newDatastoreFiles(env.Client, d.Datacenter, d.File, httpOptions{Connections: n.connections, Retries: 3})
	disk, err := file.OpenVMDK(ctx, files, path.Base(d.File.Path), d.File.String())
	if err != nil {
		files.closeIdle()
		return nil, err
	}
	if disk.Size() != d.Capacity {
		disk.Close()
		files.closeIdle()
		return nil, fmt.Errorf("%s: the VMDK holds %d bytes, vSphere says the disk has %d", d.File, disk.Size(), d.Capacity)
	}
	return &transported{Disk: disk, t: source.TransportNBD, done: files.closeIdle}, nil
}

// transported records which transport read a disk; done runs on Close.
type transported struct {
	source.Disk
	t    source.Transport
	done func()
}

func (d *transported) Close() error {
	err := d.Disk.Close()
	if d.done != nil {
		d.done()
	}
	return err
}

func (d *transported) Describe() source.Info {
	info := d.Disk.Describe()
	info.Transport = d.t
	return info
}
