package vsphere

import (
	"context"
	"fmt"
	"path"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
)

// Direct storage access: the proxy sees a datastore's files in a local
// directory (an NFS datastore mounted on the proxy, a SAN/VMFS path),
// configured per datastore name (--datastore-path NAME=DIR). The
// snapshot's descriptor and its extents are opened in DIR/<the
// descriptor's directory>, confined to it (file.BeneathFiles): the
// descriptor is data on shared storage, its extent names are not trusted.

type direct struct {
	paths map[string]string // datastore name -> local directory
}

// NewDirect returns the direct transport for the datastores mounted at the
// given local directories (datastore name -> directory).
func NewDirect(paths map[string]string) Transport {
	return &direct{paths: paths}
}

func (t *direct) Name() source.Transport { return source.TransportDirect }

// Open opens the snapshot's VMDK (flat or sparse extents) from the mounted
// datastore.
func (t *direct) Open(ctx context.Context, _ *Env, d SnapshotDisk) (source.Disk, error) {
	root, ok := t.paths[d.File.Datastore]
	if !ok {
		return nil, fmt.Errorf("no --datastore-path for datastore %s", d.File.Datastore)
	}
	files, closeDir, err := file.BeneathFiles(root, d.File.Dir())
	if err != nil {
		return nil, fmt.Errorf("datastore %s at %s: %w", d.File.Datastore, root, err)
	}
	disk, err := file.OpenVMDK(ctx, files, path.Base(d.File.Path), d.File.String())
	if err == nil && disk.Size() != d.Capacity {
		err = fmt.Errorf("vmdk %s has %d bytes, vSphere says the disk has %d", d.File, disk.Size(), d.Capacity)
		_ = disk.Close()
	}
	if err != nil {
		_ = closeDir()
		return nil, fmt.Errorf("datastore %s at %s: %w", d.File.Datastore, root, err)
	}
	return &transported{Disk: disk, t: source.TransportDirect, done: func() { _ = closeDir() }}, nil
}
