package vsphere

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Inventory is what `holdfast vsphere ls` shows: per datacenter its hosts,
// datastores and VMs with their disks and CBT state.
type Inventory struct {
	Datacenters []DatacenterInfo `json:"datacenters"`
}

// DatacenterInfo is one datacenter of an Inventory.
type DatacenterInfo struct {
	Name       string          `json:"name"`
	Path       string          `json:"path"`
	Hosts      []HostInfo      `json:"hosts"`
	Datastores []DatastoreInfo `json:"datastores"`
	VMs        []VMInfo        `json:"vms"`
}

// HostInfo is an ESXi host.
type HostInfo struct {
	Name       string `json:"name"`
	Path       string `json:"path"`
	Connection string `json:"connection_state"`
	Power      string `json:"power_state,omitempty"`
}

// DatastoreInfo is a datastore with its capacity and free space in bytes.
type DatastoreInfo struct {
	Name      string `json:"name"`
	Type      string `json:"type"`
	Capacity  int64  `json:"capacity_bytes"`
	Free      int64  `json:"free_bytes"`
	URL       string `json:"url,omitempty"`
	Reachable bool   `json:"accessible"`
}

// VMInfo is a VM with its disks and CBT state.
type VMInfo struct {
	Name  string `json:"name"`
	Path  string `json:"path"`
	Power string `json:"power_state"`
	// CBT is changeTrackingEnabled ("on", "off").
	CBT       string     `json:"cbt"`
	Snapshots int        `json:"snapshots"`
	Disks     []DiskInfo `json:"disks"`
}

// DiskInfo is one disk of a VMInfo.
type DiskInfo struct {
	File       string `json:"file"`
	Capacity   int64  `json:"capacity_bytes"`
	Controller string `json:"controller"`
	Unit       int    `json:"unit"`
	Mode       string `json:"mode"`
	ChangeID   string `json:"change_id,omitempty"`
	// Skipped says why a backup leaves the disk out (independent, RDM).
	Skipped string `json:"skipped,omitempty"`
}

// List reads the inventory below path: "" lists every datacenter; "/DC"
// one; a deeper path the VMs at or below it (a VM or a VM folder) with the
// datacenter's hosts and datastores.
func List(ctx context.Context, c *Client, path string) (*Inventory, error) {
	f := find.NewFinder(c.Client)
	var dcs []*object.Datacenter
	var err error
	if path == "" {
		dcs, err = f.DatacenterList(ctx, "*")
	} else {
		var dc *object.Datacenter
		dc, err = f.Datacenter(ctx, "/"+datacenterPath(Locator{Path: path}))
		dcs = []*object.Datacenter{dc}
	}
	if err != nil {
		return nil, listError(path, err)
	}
	inv := &Inventory{Datacenters: []DatacenterInfo{}}
	for _, dc := range dcs {
		info, err := listDatacenter(ctx, c, f, dc, path)
		if err != nil {
			return nil, err
		}
		inv.Datacenters = append(inv.Datacenters, info)
	}
	return inv, nil
}

func listError(path string, err error) error {
	var nf *find.NotFoundError
	if errors.As(err, &nf) {
		return fmt.Errorf("%w: nothing at inventory path %q", ErrVMNotFound, path)
	}
	return fmt.Errorf("list vSphere inventory %q: %w", path, err)
}

func listDatacenter(ctx context.Context, c *Client, f *find.Finder, dc *object.Datacenter, path string) (DatacenterInfo, error) {
	info := DatacenterInfo{Name: dc.Name(), Path: dc.InventoryPath, Hosts: []HostInfo{}, Datastores: []DatastoreInfo{}, VMs: []VMInfo{}}
	pc := property.DefaultCollector(c.Client)
	hosts, err := f.HostSystemList(ctx, dc.InventoryPath+"/host/...")
	if err != nil && !isNotFound(err) {
		return info, listError(dc.InventoryPath, err)
	}
	for _, h := range hosts {
		var mh mo.HostSystem
		if err := pc.RetrieveOne(ctx, h.Reference(), []string{"name", "runtime"}, &mh); err != nil {
			return info, err
		}
		info.Hosts = append(info.Hosts, HostInfo{Name: mh.Name, Path: h.InventoryPath, Connection: string(mh.Runtime.ConnectionState), Power: string(mh.Runtime.PowerState)})
	}
	dss, err := f.DatastoreList(ctx, dc.InventoryPath+"/datastore/...")
	if err != nil && !isNotFound(err) {
		return info, listError(dc.InventoryPath, err)
	}
	for _, d := range dss {
		var md mo.Datastore
		if err := pc.RetrieveOne(ctx, d.Reference(), []string{"summary"}, &md); err != nil {
			return info, err
		}
		s := md.Summary
		info.Datastores = append(info.Datastores, DatastoreInfo{Name: s.Name, Type: s.Type, Capacity: s.Capacity, Free: s.FreeSpace, URL: s.Url, Reachable: s.Accessible})
	}
	vms, err := listVMs(ctx, f, dc, path)
	if err != nil {
		return info, err
	}
	for _, vm := range vms {
		v, err := vmInfo(ctx, pc, vm)
		if err != nil {
			return info, err
		}
		info.VMs = append(info.VMs, v)
	}
	return info, nil
}

// listVMs finds the VMs a path names: every VM of the datacenter, the VM
// itself, or the VMs below a folder.
func listVMs(ctx context.Context, f *find.Finder, dc *object.Datacenter, path string) ([]*object.VirtualMachine, error) {
	if path == "" || strings.Count(strings.Trim(path, "/"), "/") < 2 {
		vms, err := f.VirtualMachineList(ctx, dc.InventoryPath+"/vm/...")
		if err != nil && !isNotFound(err) {
			return nil, listError(path, err)
		}
		return vms, nil
	}
	if vm, err := f.VirtualMachine(ctx, path); err == nil {
		return []*object.VirtualMachine{vm}, nil
	}
	vms, err := f.VirtualMachineList(ctx, path+"/...")
	if err != nil {
		return nil, listError(path, err)
	}
	return vms, nil
}

func isNotFound(err error) bool {
	var nf *find.NotFoundError
	return errors.As(err, &nf)
}

func vmInfo(ctx context.Context, pc *property.Collector, vm *object.VirtualMachine) (VMInfo, error) {
	var m mo.VirtualMachine
	if err := pc.RetrieveOne(ctx, vm.Reference(), []string{"name", "config", "runtime.powerState", "snapshot"}, &m); err != nil {
		return VMInfo{}, fmt.Errorf("read VM %s: %w", vm.InventoryPath, err)
	}
	info := VMInfo{Name: m.Name, Path: vm.InventoryPath, Power: string(m.Runtime.PowerState), CBT: "off", Disks: []DiskInfo{}}
	if m.Snapshot != nil {
		info.Snapshots = countSnapshots(m.Snapshot.RootSnapshotList)
	}
	if m.Config == nil {
		return info, nil
	}
	if m.Config.ChangeTrackingEnabled != nil && *m.Config.ChangeTrackingEnabled {
		info.CBT = "on"
	}
	ctrls := controllers(m.Config.Hardware.Device)
	for _, dev := range m.Config.Hardware.Device {
		vd, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, why := backingOf(vd)
		unit := 0
		if vd.UnitNumber != nil {
			unit = int(*vd.UnitNumber)
		}
		info.Disks = append(info.Disks, DiskInfo{File: b.file, Capacity: diskCapacity(vd), Controller: ctrls[vd.ControllerKey].name(),
			Unit: unit, Mode: b.mode, ChangeID: b.changeID, Skipped: why})
	}
	return info, nil
}

func countSnapshots(l []types.VirtualMachineSnapshotTree) int {
	n := len(l)
	for _, s := range l {
		n += countSnapshots(s.ChildSnapshotList)
	}
	return n
}
