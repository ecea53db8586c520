package vsphere

import (
	"fmt"
	"strings"

	"github.com/vmware/govmomi/vim25/types"
)

// diskBacking is what a snapshot's disk backing tells: its file, mode,
// change ID and provisioning.
type diskBacking struct {
	file     string
	mode     string
	changeID string
	thin     bool
}

// backingOf reads a disk's backing; why is set when the disk cannot be
// backed up (RDM, an unknown backing, an independent disk mode).
func backingOf(d *types.VirtualDisk) (b diskBacking, why string) {
	switch x := d.Backing.(type) {
	case *types.VirtualDiskFlatVer2BackingInfo:
		b = diskBacking{file: x.FileName, mode: x.DiskMode, changeID: x.ChangeId, thin: x.ThinProvisioned != nil && *x.ThinProvisioned}
	case *types.VirtualDiskSparseVer2BackingInfo:
		b = diskBacking{file: x.FileName, mode: x.DiskMode, changeID: x.ChangeId, thin: true}
	case *types.VirtualDiskSeSparseBackingInfo:
		b = diskBacking{file: x.FileName, mode: x.DiskMode, changeID: x.ChangeId, thin: true}
	case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
		return diskBacking{file: x.FileName, mode: x.DiskMode}, fmt.Sprintf("a raw device mapping (%s, %s) is not in the snapshot", x.CompatibilityMode, x.FileName)
	case *types.VirtualDiskRawDiskVer2BackingInfo, *types.VirtualDiskPartitionedRawDiskVer2BackingInfo:
		return b, "a raw disk is not in the snapshot"
	default:
		return b, fmt.Sprintf("backing %T is not supported", d.Backing)
	}
	if strings.HasPrefix(b.mode, "independent") {
		return b, fmt.Sprintf("disk mode %s: a snapshot does not cover an independent disk", b.mode)
	}
	return b, ""
}

// controllers maps device keys of disk controllers to their name and bus.
func controllers(devs []types.BaseVirtualDevice) map[int32]controller {
	m := map[int32]controller{}
	for _, d := range devs {
		var kind string
		switch d.(type) {
		case *types.ParaVirtualSCSIController:
			kind = "pvscsi"
		case *types.VirtualLsiLogicController:
			kind = "lsilogic"
		case *types.VirtualLsiLogicSASController:
			kind = "lsilogic-sas"
		case *types.VirtualBusLogicController:
			kind = "buslogic"
		case *types.VirtualNVMEController:
			kind = "nvme"
		case *types.VirtualAHCIController:
			kind = "sata"
		case *types.VirtualIDEController:
			kind = "ide"
		default:
			continue
		}
		bc, ok := d.(types.BaseVirtualController)
		if !ok {
			continue
		}
		m[d.GetVirtualDevice().Key] = controller{kind: kind, bus: int(bc.GetVirtualController().BusNumber)}
	}
	return m
}

type controller struct {
	kind string
	bus  int
}

// name is "pvscsi 0": the controller type and its bus number.
func (c controller) name() string {
	if c.kind == "" {
		return "unknown"
	}
	return fmt.Sprintf("%s %d", c.kind, c.bus)
}

// snapshotDisks lists the disks of a snapshot's configuration in device
// order; skipped says which were left out and why.
func snapshotDisks(dc string, cfg *types.VirtualMachineConfigInfo) (disks []SnapshotDisk, skipped []string) {
	ctrls := controllers(cfg.Hardware.Device)
	for _, dev := range cfg.Hardware.Device {
		vd, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		ctl := ctrls[vd.ControllerKey]
		unit := 0
		if vd.UnitNumber != nil {
			unit = int(*vd.UnitNumber)
		}
		label := fmt.Sprintf("%s:%d", ctl.name(), unit)
		b, why := backingOf(vd)
		if why != "" {
			skipped = append(skipped, fmt.Sprintf("disk %s (%s) skipped: %s", label, b.file, why))
			continue
		}
		p, err := ParseDatastorePath(b.file)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("disk %s skipped: %v", label, err))
			continue
		}
		disks = append(disks, SnapshotDisk{Index: len(disks), Key: vd.Key, Controller: ctl.name(), Bus: ctl.bus, Unit: unit,
			File: p, Datacenter: dc, Capacity: diskCapacity(vd), ChangeID: b.changeID})
	}
	return disks, skipped
}

// diskCapacity is a disk's size in bytes (older hosts only give KB).
func diskCapacity(vd *types.VirtualDisk) int64 {
	if vd.CapacityInBytes > 0 {
		return vd.CapacityInBytes
	}
	return vd.CapacityInKB * 1024
}
