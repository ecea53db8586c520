package instant

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/export/nfs"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/vmx"
)

// ScratchDir is the subdirectory of a session's redo directory that holds
// its NFS export's scratch area: the generated .vmx and descriptors, and
// what NFS clients create (ESXi's locks, swap file, logs). It is removed
// when the session stops.
const ScratchDir = "scratch"

// nfsExport is a session's NFS export: per disk a flat raw file
// (disk-N.img, writable through the overlay) and a VMDK descriptor
// pointing at it (disk-N.vmdk, monolithicFlat, for QEMU and tools), the
// VM's configuration as the point recorded it (vm.json), and for ESXi
// (layout) a VM folder NAME holding per disk the flat extent
// NAME-diskN-flat.vmdk (the same overlay), whose descriptor and the VM's
// NAME.vmx are files of the scratch area's NAME (scratch), where ESXi may
// rewrite them and creates its own.
func nfsExport(path string, m *repo.Manifest, disks []served, layout vmx.Layout, scratch string) nfs.Export {
	e := nfs.Export{Path: path, Scratch: scratch}
	for i, d := range disks {
		ov := d.overlay
		e.Files = append(e.Files, nfs.File{Name: fmt.Sprintf("disk-%d.img", i), Size: ov.Size(),
			ReaderAt: ov, WriterAt: ov, Flush: ov.Flush})
		desc := vmx.Descriptor(fmt.Sprintf("disk-%d.img", i), ov.Size(), "monolithicFlat", "lsilogic", vmx.DefaultHWVersion)
		e.Files = append(e.Files, nfs.File{Name: fmt.Sprintf("disk-%d.vmdk", i), Size: int64(len(desc)),
			ReaderAt: strings.NewReader(desc)})
		e.Files = append(e.Files, nfs.File{Name: layout.Base + "/" + layout.Disks[i].Flat, Size: ov.Size(),
			ReaderAt: ov, WriterAt: ov, Flush: ov.Flush})
	}
	cfg, _ := json.MarshalIndent(map[string]any{"vm": m.VM, "point": m.ID, "time": m.Time, "disks": m.Disks,
		"notes": m.Notes, "config": m.Config}, "", "  ")
	e.Files = append(e.Files, nfs.File{Name: "vm.json", Size: int64(len(cfg)), ReaderAt: strings.NewReader(string(cfg))})
	return e
}

// esxiLayout lays out the point's VM for ESXi under name (""
// : the name the point recorded).
func esxiLayout(name string, m *repo.Manifest, disks []served) vmx.Layout {
	if name == "" && m.Config != nil {
		name = m.Config.Name
	}
	if name == "" {
		name = m.VM
	}
	sizes := make([]int64, len(disks))
	for i, d := range disks {
		sizes[i] = d.overlay.Size()
	}
	return vmx.New(name, m.Config, sizes)
}

// writeScratch makes a fresh scratch area holding the layout's .vmx and
// descriptors.
func writeScratch(dir string, l vmx.Layout) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, l.Base), 0o700); err != nil {
		return err
	}
	files := map[string][]byte{l.VMX: l.Text}
	for _, d := range l.Disks {
		files[d.Descriptor] = d.Text
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, l.Base, name), b, 0o644); err != nil {
			return fmt.Errorf("scratch area: %w", err)
		}
	}
	return nil
}
