package vsphererestore

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// controllerID is a disk controller by kind (govmomi's type name) and bus.
type controllerID struct {
	kind string
	bus  int32
}

func (c controllerID) String() string { return c.kind + " " + strconv.Itoa(int(c.bus)) }

// diskController reads a recorded disk's controller: "pvscsi" with Bus,
// or "pvscsi 0".
func diskController(d repo.VMDisk) (controllerID, error) {
	f := strings.Fields(strings.ToLower(d.Controller))
	if len(f) == 0 || len(f) > 2 {
		return controllerID{}, fmt.Errorf("disk %d: controller %q: want a type such as pvscsi", d.Index, d.Controller)
	}
	bus := d.Bus
	if len(f) == 2 {
		b, err := strconv.Atoi(f[1])
		if err != nil || (d.Bus != 0 && b != d.Bus) {
			return controllerID{}, fmt.Errorf("disk %d: controller %q: bad bus number", d.Index, d.Controller)
		}
		bus = b
	}
	kind := f[0]
	if kind == "sata" {
		kind = "ahci"
	}
	if bus < 0 || bus > 3 || d.Unit < 0 || d.Unit > 64 {
		return controllerID{}, fmt.Errorf("disk %d: bus %d unit %d out of range", d.Index, bus, d.Unit)
	}
	return controllerID{kind: kind, bus: int32(bus)}, nil
}

// newController returns a new controller of the kind on the bus, with a
// temporary (negative) key; IDE controllers are never created (every VM
// has two).
func newController(c controllerID, key int32) (types.BaseVirtualDevice, error) {
	var dev types.BaseVirtualDevice
	switch c.kind {
	case "pvscsi", "lsilogic", "lsilogic-sas", "buslogic":
		found := object.SCSIControllerTypes().Select(func(d types.BaseVirtualDevice) bool {
			return object.VirtualDeviceList(nil).Type(d) == c.kind
		})
		scsi := found[0].(types.BaseVirtualSCSIController).GetVirtualSCSIController()
		scsi.ScsiCtlrUnitNumber = 7
		dev = found[0]
	case "nvme":
		dev = &types.VirtualNVMEController{}
	case "ahci":
		dev = &types.VirtualAHCIController{}
	default:
		return nil, fmt.Errorf("controller type %q cannot be recreated (want pvscsi, lsilogic, lsilogic-sas, buslogic, nvme, ahci or ide)", c.kind)
	}
	vc := dev.(types.BaseVirtualController).GetVirtualController()
	vc.BusNumber, vc.Key = c.bus, key
	return dev, nil
}

// findController returns the VM's controller of that kind and bus.
func findController(devs object.VirtualDeviceList, c controllerID) types.BaseVirtualController {
	for _, d := range devs {
		vc, ok := d.(types.BaseVirtualController)
		if !ok || vc.GetVirtualController().BusNumber != c.bus {
			continue
		}
		kind := devs.Type(d)
		if kind == "sata" {
			kind = "ahci"
		}
		if kind == c.kind {
			return vc
		}
	}
	return nil
}

// diskAt returns the VM's disk on controller c at unit.
func diskAt(devs object.VirtualDeviceList, c controllerID, unit int) *types.VirtualDisk {
	vc := findController(devs, c)
	if vc == nil {
		return nil
	}
	key := vc.GetVirtualController().Key
	for _, d := range devs {
		disk, ok := d.(*types.VirtualDisk)
		if ok && disk.ControllerKey == key && disk.UnitNumber != nil && int(*disk.UnitNumber) == unit {
			return disk
		}
	}
	return nil
}

// newNIC returns a network adapter of the recorded model on backing, with
// the recorded MAC address when keepMAC, else one vSphere generates.
func newNIC(n repo.VMNIC, backing types.BaseVirtualDeviceBackingInfo, keepMAC bool) (types.BaseVirtualDevice, error) {
	model := strings.ToLower(n.Model)
	if model == "" {
		model = "vmxnet3"
	}
	dev, err := object.VirtualDeviceList(nil).CreateEthernetCard(model, backing)
	if err != nil {
		return nil, fmt.Errorf("NIC on %s: %w", n.Network, err)
	}
	card := dev.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
	card.AddressType = string(types.VirtualEthernetCardMacTypeGenerated)
	if keepMAC && n.MAC != "" {
		card.AddressType = string(types.VirtualEthernetCardMacTypeManual)
		card.MacAddress = n.MAC
	}
	return dev, nil
}
