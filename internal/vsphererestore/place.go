package vsphererestore

import (
	"context"
	"fmt"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// placement is where the new VM goes.
type placement struct {
	ds       *object.Datastore
	pool     *object.ResourcePool
	host     *object.HostSystem // nil: vSphere picks (a cluster)
	hostName string
	folder   *object.Folder
}

// place finds the datastore, the resource pool (of --host, of --cluster,
// else of a host that mounts the datastore) and the folder.
func (req *Request) place(ctx context.Context, f *find.Finder, vmFolder *object.Folder) (placement, error) {
	var p placement
	dsName := req.Datastore
	if dsName == "" {
		dsName = req.Config.Disks[0].Datastore
	}
	if dsName == "" {
		return p, fmt.Errorf("the point records no datastore: give one with --datastore")
	}
	ds, err := f.Datastore(ctx, dsName)
	if err != nil {
		return p, fmt.Errorf("datastore %q: %w", dsName, err)
	}
	p.ds = ds
	switch {
	case req.Host != "" && req.Cluster != "":
		return p, fmt.Errorf("give a host or a cluster, not both")
	case req.Host != "":
		if p.host, err = f.HostSystem(ctx, req.Host); err != nil {
			return p, fmt.Errorf("host %q: %w", req.Host, err)
		}
	case req.Cluster != "":
		cl, err := f.ClusterComputeResource(ctx, req.Cluster)
		if err != nil {
			return p, fmt.Errorf("cluster %q: %w", req.Cluster, err)
		}
		if p.pool, err = cl.ResourcePool(ctx); err != nil {
			return p, fmt.Errorf("cluster %q: %w", req.Cluster, err)
		}
	default:
		if p.host, err = hostOf(ctx, ds); err != nil {
			return p, err
		}
	}
	if p.host != nil {
		if p.pool, err = p.host.ResourcePool(ctx); err != nil {
			return p, fmt.Errorf("resource pool of host %s: %w", p.host.InventoryPath, err)
		}
		if p.hostName, err = p.host.ObjectName(ctx); err != nil {
			return p, err
		}
	}
	p.folder = vmFolder
	if req.Folder != "" {
		if p.folder, err = f.Folder(ctx, req.Folder); err != nil {
			return p, fmt.Errorf("folder %q: %w", req.Folder, err)
		}
	}
	return p, nil
}

// hostOf returns a host that has the datastore mounted and accessible.
func hostOf(ctx context.Context, ds *object.Datastore) (*object.HostSystem, error) {
	var m mo.Datastore
	if err := ds.Properties(ctx, ds.Reference(), []string{"host"}, &m); err != nil {
		return nil, fmt.Errorf("hosts of datastore %s: %w", ds.Name(), err)
	}
	for _, h := range m.Host {
		if h.MountInfo.Accessible == nil || *h.MountInfo.Accessible {
			return object.NewHostSystem(ds.Client(), h.Key), nil
		}
	}
	return nil, fmt.Errorf("datastore %s is mounted on no host: give --host or --cluster", ds.Name())
}

// createSpec is the new VM without its disks: hardware, controllers and
// NICs on the mapped networks.
func (req *Request) createSpec(ctx context.Context, f *find.Finder, name, ds string, res *Result) (types.VirtualMachineConfigSpec, error) {
	cfg := req.Config
	spec := types.VirtualMachineConfigSpec{
		Name:     name,
		GuestId:  cfg.GuestID,
		NumCPUs:  int32(max(cfg.CPUs, 1)),
		MemoryMB: max(cfg.MemoryMiB, 4),
		Firmware: cfg.Firmware,
		Version:  cfg.Version,
		Files:    &types.VirtualMachineFileInfo{VmPathName: "[" + ds + "]"},
	}
	if spec.GuestId == "" {
		spec.GuestId = string(types.VirtualMachineGuestOsIdentifierOtherGuest64)
	}
	key := int32(-100)
	seen := map[controllerID]bool{}
	for _, d := range cfg.Disks {
		c, _ := diskController(d) // checked
		if seen[c] || c.kind == "ide" {
			continue
		}
		seen[c] = true
		dev, err := newController(c, key)
		if err != nil {
			return spec, err
		}
		key--
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: dev})
	}
	for _, n := range cfg.NICs {
		net := n.Network
		if to, ok := req.Networks[net]; ok {
			net = to
		}
		ref, err := f.Network(ctx, net)
		if err != nil {
			return spec, fmt.Errorf("network %q of the NIC %s: %w (map it with --network %s=OTHER)", net, n.MAC, err, n.Network)
		}
		backing, err := ref.EthernetCardBackingInfo(ctx)
		if err != nil {
			return spec, fmt.Errorf("network %q: %w", net, err)
		}
		dev, err := newNIC(n, backing, res.MACsKept)
		if err != nil {
			return spec, err
		}
		dev.GetVirtualDevice().Key = key
		key--
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: dev})
		res.NICs = append(res.NICs, NICResult{Model: n.Model, Network: net})
	}
	return spec, nil
}
