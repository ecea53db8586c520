package instant

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/export/nfs"
	"github.com/holdfast-backup/holdfast/internal/repo"
)

// nfsExport is a session's NFS export: per disk a flat raw file
// (disk-N.img, writable through the overlay) and a VMDK descriptor
// pointing at it (disk-N.vmdk, for vSphere-style hosts), and the VM's
// configuration as the point recorded it (vm.json).
func nfsExport(path string, m *repo.Manifest, disks []served) nfs.Export {
	e := nfs.Export{Path: path}
	for i, d := range disks {
		ov := d.overlay
		e.Files = append(e.Files, nfs.File{Name: fmt.Sprintf("disk-%d.img", i), Size: ov.Size(),
			ReaderAt: ov, WriterAt: ov, Flush: ov.Flush})
		desc := vmdkDescriptor(fmt.Sprintf("disk-%d.img", i), ov.Size())
		e.Files = append(e.Files, nfs.File{Name: fmt.Sprintf("disk-%d.vmdk", i), Size: int64(len(desc)),
			ReaderAt: strings.NewReader(desc)})
	}
	cfg, _ := json.MarshalIndent(map[string]any{"vm": m.VM, "point": m.ID, "time": m.Time, "disks": m.Disks,
		"notes": m.Notes}, "", "  ")
	e.Files = append(e.Files, nfs.File{Name: "vm.json", Size: int64(len(cfg)), ReaderAt: strings.NewReader(string(cfg))})
	return e
}

// vmdkDescriptor is a monolithicFlat VMDK descriptor for a raw extent.
func vmdkDescriptor(extent string, size int64) string {
	sectors := size / 512
	cyl := sectors / (255 * 63)
	return fmt.Sprintf(`# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="monolithicFlat"

# Extent description
RW %d FLAT "%s" 0

# The Disk Data Base
#DDB

ddb.adapterType = "lsilogic"
ddb.geometry.cylinders = "%d"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
ddb.virtualHWVersion = "14"
`, sectors, extent, cyl)
}
