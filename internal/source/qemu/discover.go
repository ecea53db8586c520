package qemu

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/qmp"
)

// vmDisk is one disk of the VM as QEMU describes it.
type vmDisk struct {
	Device  string // qdev id or backend name, for messages
	Node    string // the node the guest device reads (its root)
	File    string // image file name
	Format  string // image format of the node (qcow2, raw)
	Size    int64
	Bitmaps []qmp.DirtyBitmap
}

// discover lists the VM's disks in a stable order (by device name),
// skipping empty drives (CD-ROMs without media).
func discover(ctx context.Context, c *qmp.Client) ([]vmDisk, error) {
	devs, err := c.QueryBlock(ctx)
	if err != nil {
		return nil, fmt.Errorf("query-block: %w", err)
	}
	var disks []vmDisk
	for _, d := range devs {
		if d.Inserted == nil || d.NodeName() == "" || strings.HasPrefix(d.NodeName(), "hf-") {
			continue
		}
		name := d.Device
		if name == "" {
			name = d.QDev
		}
		in := d.Inserted
		disks = append(disks, vmDisk{Device: name, Node: d.NodeName(), File: in.Image.Filename,
			Format: in.Image.Format, Size: in.Image.VirtualSize, Bitmaps: in.DirtyBitmaps})
	}
	if len(disks) == 0 {
		return nil, fmt.Errorf("the VM has no disks with media")
	}
	sort.SliceStable(disks, func(i, j int) bool { return disks[i].Device < disks[j].Device })
	return disks, nil
}
