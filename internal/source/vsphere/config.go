package vsphere

import (
	"context"
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vmConfig records the VM's configuration at the snapshot: what a restore
// needs to recreate it.
func vmConfig(ctx context.Context, c *Client, vm *mo.VirtualMachine, snap *types.VirtualMachineConfigInfo, disks []SnapshotDisk, skipped []string) *repo.VMConfig {
	cfg := &repo.VMConfig{Platform: "vsphere", Name: vm.Name, UUID: snap.InstanceUuid, GuestID: snap.GuestId,
		Version: snap.Version, CPUs: int(snap.Hardware.NumCPU), MemoryMiB: int64(snap.Hardware.MemoryMB),
		Firmware: snap.Firmware, Skipped: skipped}
	if cfg.Firmware == "" {
		cfg.Firmware = "bios"
	}
	byKey := map[int32]*types.VirtualDisk{}
	for _, dev := range snap.Hardware.Device {
		if vd, ok := dev.(*types.VirtualDisk); ok {
			byKey[vd.Key] = vd
		}
	}
	for _, d := range disks {
		b, _ := backingOf(byKey[d.Key])
		cfg.Disks = append(cfg.Disks, repo.VMDisk{Index: d.Index, Controller: d.Controller, Bus: d.Bus, Unit: d.Unit,
			CapacityBytes: d.Capacity, Thin: b.thin, Mode: b.mode, File: d.File.String(), Datastore: d.File.Datastore})
	}
	names := networkNames(ctx, c, vm.Network)
	for _, dev := range snap.Hardware.Device {
		nic, ok := dev.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		card := nic.GetVirtualEthernetCard()
		cfg.NICs = append(cfg.NICs, repo.VMNIC{Model: nicModel(dev), Network: nicNetwork(card.Backing, names), MAC: card.MacAddress})
	}
	return cfg
}

// nicModel is the adapter type as vSphere calls it ("vmxnet3", "e1000").
func nicModel(dev types.BaseVirtualDevice) string {
	switch dev.(type) {
	case *types.VirtualVmxnet3:
		return "vmxnet3"
	case *types.VirtualVmxnet2:
		return "vmxnet2"
	case *types.VirtualE1000e:
		return "e1000e"
	case *types.VirtualE1000:
		return "e1000"
	case *types.VirtualPCNet32:
		return "pcnet32"
	case *types.VirtualSriovEthernetCard:
		return "sriov"
	}
	return strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", dev), "*types.Virtual"))
}

// nicNetwork names the network or port group a NIC's backing connects to.
func nicNetwork(b types.BaseVirtualDeviceBackingInfo, names map[string]string) string {
	switch x := b.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		return x.DeviceName
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		if n := names[x.Port.PortgroupKey]; n != "" {
			return n
		}
		return x.Port.PortgroupKey
	case *types.VirtualEthernetCardOpaqueNetworkBackingInfo:
		return x.OpaqueNetworkId
	}
	return ""
}

// networkNames maps the VM's networks' object IDs (a distributed port
// group's ID is its key) to their names; on error the keys stay.
func networkNames(ctx context.Context, c *Client, refs []types.ManagedObjectReference) map[string]string {
	names := map[string]string{}
	if len(refs) == 0 {
		return names
	}
	var nets []mo.Network
	if err := property.DefaultCollector(c.Client).Retrieve(ctx, refs, []string{"name"}, &nets); err != nil {
		return names
	}
	for _, n := range nets {
		names[n.Self.Value] = n.Name
	}
	return names
}
