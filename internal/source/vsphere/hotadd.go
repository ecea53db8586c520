package vsphere

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Virtual appliance mode (hotadd): the proxy is itself a VM of the
// inventory. The snapshot's disk file is attached to it as an extra disk
// (ReconfigVM: an existing file, no file operation, independent
// non-persistent so nothing is written to the file) on a free unit of one
// of its SCSI controllers, read as a local block device and detached again
// (ReconfigVM remove, the file kept) when the disk is closed or Open fails.
// A disk a killed run left attached is found by its backing file and
// detached by the next Open of the same disk.

// DeviceFinder returns the local block device (a path) through which the
// proxy sees a disk just attached to it. NewSysfsFinder gives the default.
type DeviceFinder func(ctx context.Context, disk *types.VirtualDisk) (string, error)

// detachTimeout bounds the detach done after the session's context ended.
const detachTimeout = 5 * time.Minute

// scsiUnits is the number of units of a SCSI controller a disk may take.
const scsiUnits = 16

type hotAdd struct {
	proxyVM string
	find    DeviceFinder
	mu      sync.Mutex // one reconfiguration of the proxy VM at a time
}

// NewHotAdd returns the hotadd transport for a proxy that is the VM named
// proxyVM (an inventory name or path in the disk's datacenter); find
// locates an attached disk's block device (nil: NewSysfsFinder).
func NewHotAdd(proxyVM string, find DeviceFinder) Transport {
	if find == nil {
		find = NewSysfsFinder().Find
	}
	return &hotAdd{proxyVM: proxyVM, find: find}
}

func (h *hotAdd) Name() source.Transport { return source.TransportHotAdd }

// Open attaches the snapshot's disk to the proxy VM and opens its block
// device read-only.
func (h *hotAdd) Open(ctx context.Context, env *Env, d SnapshotDisk) (source.Disk, error) {
	if h.proxyVM == "" {
		return nil, errors.New("the proxy is not a VM of the inventory (no --vsphere-vm)")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	p, err := h.proxy(ctx, env, d)
	if err != nil {
		return nil, err
	}
	if err := p.detachLeftovers(ctx, env, d.File); err != nil {
		return nil, err
	}
	disk, err := p.attach(ctx, d)
	if err != nil {
		return nil, err
	}
	detach := func() error { return p.detach(ctx, disk, d.File) }
	dev, err := h.find(ctx, disk)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("find the proxy's device of %s: %w", d.File, err), detach())
	}
	fd, err := file.Open(ctx, dev, file.Options{Format: file.FormatRaw})
	if err == nil && fd.Size() != d.Capacity {
		err = fmt.Errorf("%s has %d bytes, the disk %d: not the disk attached", dev, fd.Size(), d.Capacity)
		_ = fd.Close()
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("open the proxy's device of %s: %w", d.File, err), detach())
	}
	info := source.Info{Format: fd.Describe().Format, Location: d.File.String(), Transport: source.TransportHotAdd}
	return &hotAddDisk{Disk: fd, info: info, detach: detach}, nil
}

// proxyVM is the proxy's VM with what hotadd needs of it.
type proxyVM struct {
	vm      *object.VirtualMachine
	name    string
	devices object.VirtualDeviceList
}

// proxy finds the proxy VM and checks its host sees the disk's datastore.
func (h *hotAdd) proxy(ctx context.Context, env *Env, d SnapshotDisk) (*proxyVM, error) {
	c := env.Client.Client
	finder := find.NewFinder(c)
	dc, err := finder.Datacenter(ctx, d.Datacenter)
	if err != nil {
		return nil, fmt.Errorf("datacenter %q: %w", d.Datacenter, err)
	}
	finder.SetDatacenter(dc)
	vm, err := finder.VirtualMachine(ctx, h.proxyVM)
	if err != nil {
		return nil, fmt.Errorf("proxy VM %q (--vsphere-vm) not found in datacenter %s: %w", h.proxyVM, d.Datacenter, err)
	}
	if env.VM != nil && vm.Reference() == env.VM.Reference() {
		return nil, fmt.Errorf("proxy VM %q is the VM being backed up", h.proxyVM)
	}
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"name", "runtime.host", "config.hardware.device"}, &m); err != nil {
		return nil, fmt.Errorf("proxy VM %q: %w", h.proxyVM, err)
	}
	if m.Runtime.Host == nil || m.Config == nil {
		return nil, fmt.Errorf("proxy VM %q has no host or configuration", h.proxyVM)
	}
	var host mo.HostSystem
	pc := property.DefaultCollector(c)
	if err := pc.RetrieveOne(ctx, *m.Runtime.Host, []string{"name", "datastore"}, &host); err != nil {
		return nil, fmt.Errorf("host of proxy VM %q: %w", h.proxyVM, err)
	}
	var stores []mo.Datastore
	if len(host.Datastore) > 0 {
		if err := pc.Retrieve(ctx, host.Datastore, []string{"name"}, &stores); err != nil {
			return nil, fmt.Errorf("datastores of host %s: %w", host.Name, err)
		}
	}
	seen := false
	for _, s := range stores {
		seen = seen || s.Name == d.File.Datastore
	}
	if !seen {
		return nil, fmt.Errorf("proxy VM %q runs on host %s, which cannot see datastore %s", h.proxyVM, host.Name, d.File.Datastore)
	}
	return &proxyVM{vm: vm, name: m.Name, devices: m.Config.Hardware.Device}, nil
}

// backedBy says whether a device is a disk whose backing is file.
func backedBy(dev types.BaseVirtualDevice, file DatastorePath) (*types.VirtualDisk, bool) {
	disk, ok := dev.(*types.VirtualDisk)
	if !ok {
		return nil, false
	}
	b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
	if !ok {
		return nil, false
	}
	p, err := ParseDatastorePath(b.GetVirtualDeviceFileBackingInfo().FileName)
	return disk, err == nil && p == file
}

// detachLeftovers detaches disks backed by file that a killed run left
// attached to the proxy.
func (p *proxyVM) detachLeftovers(ctx context.Context, env *Env, file DatastorePath) error {
	for _, dev := range p.devices {
		disk, ok := backedBy(dev, file)
		if !ok {
			continue
		}
		if env.Logger != nil {
			env.Logger.WarnContext(ctx, "hotadd: detaching a disk a previous run left attached to the proxy VM",
				"proxy_vm", p.name, "file", file.String(), "key", disk.Key)
		}
		if err := p.reconfigure(ctx, types.VirtualDeviceConfigSpecOperationRemove, disk); err != nil {
			return fmt.Errorf("detach %s, left attached to proxy VM %q by a previous run: %w", file, p.name, err)
		}
	}
	return nil
}

// freeUnit returns a SCSI controller of the proxy with a free unit.
func (p *proxyVM) freeUnit() (int32, int32, error) {
	used := map[[2]int32]bool{}
	for _, dev := range p.devices {
		if d := dev.GetVirtualDevice(); d.UnitNumber != nil {
			used[[2]int32{d.ControllerKey, *d.UnitNumber}] = true
		}
	}
	controllers := 0
	for _, dev := range p.devices {
		c, ok := dev.(types.BaseVirtualSCSIController)
		if !ok {
			continue
		}
		controllers++
		sc := c.GetVirtualSCSIController()
		for u := int32(0); u < scsiUnits; u++ {
			if u != sc.ScsiCtlrUnitNumber && !used[[2]int32{sc.Key, u}] {
				return sc.Key, u, nil
			}
		}
	}
	if controllers == 0 {
		return 0, 0, fmt.Errorf("proxy VM %q has no SCSI controller to attach the disk to", p.name)
	}
	return 0, 0, fmt.Errorf("no free unit on the %d SCSI controller(s) of proxy VM %q", controllers, p.name)
}

// attach adds the snapshot's disk file to the proxy and returns the device
// as the proxy now has it.
func (p *proxyVM) attach(ctx context.Context, d SnapshotDisk) (*types.VirtualDisk, error) {
	ctrl, unit, err := p.freeUnit()
	if err != nil {
		return nil, err
	}
	disk := &types.VirtualDisk{
		VirtualDevice: types.VirtualDevice{
			Key: -1, ControllerKey: ctrl, UnitNumber: types.NewInt32(unit),
			Backing: &types.VirtualDiskFlatVer2BackingInfo{
				VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: d.File.String()},
				DiskMode:                     string(types.VirtualDiskModeIndependent_nonpersistent),
			},
		},
	}
	if err := p.reconfigure(ctx, types.VirtualDeviceConfigSpecOperationAdd, disk); err != nil {
		return nil, fmt.Errorf("attach %s to proxy VM %q: %w", d.File, p.name, err)
	}
	devices, err := p.vm.Device(ctx)
	if err == nil {
		for _, dev := range devices {
			if got, ok := backedBy(dev, d.File); ok && got.ControllerKey == ctrl && got.UnitNumber != nil && *got.UnitNumber == unit {
				return got, nil
			}
		}
		err = errors.New("the disk is not in its device list")
	}
	// Attached but not found: detach what carries the file.
	return nil, errors.Join(fmt.Errorf("attach %s to proxy VM %q: %w", d.File, p.name, err), p.detach(ctx, disk, d.File))
}

// detach removes the disk backed by file from the proxy, keeping the file;
// it runs even when ctx has ended (Ctrl-C).
func (p *proxyVM) detach(ctx context.Context, disk *types.VirtualDisk, file DatastorePath) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachTimeout)
	defer cancel()
	devices, err := p.vm.Device(ctx)
	if err != nil {
		return fmt.Errorf("detach %s from proxy VM %q: %w", file, p.name, err)
	}
	var errs []error
	for _, dev := range devices {
		if got, ok := backedBy(dev, file); ok && (disk.Key <= 0 || got.Key == disk.Key) {
			if err := p.reconfigure(ctx, types.VirtualDeviceConfigSpecOperationRemove, got); err != nil {
				errs = append(errs, fmt.Errorf("detach %s from proxy VM %q: %w", file, p.name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// reconfigure adds or removes one device, never creating or deleting a
// file.
func (p *proxyVM) reconfigure(ctx context.Context, op types.VirtualDeviceConfigSpecOperation, dev types.BaseVirtualDevice) error {
	task, err := p.vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{
		DeviceChange: []types.BaseVirtualDeviceConfigSpec{&types.VirtualDeviceConfigSpec{Operation: op, Device: dev}},
	})
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}

// hotAddDisk is the attached disk's block device; Close detaches it.
type hotAddDisk struct {
	source.Disk
	info   source.Info
	detach func() error
	once   sync.Once
	err    error
}

func (d *hotAddDisk) Describe() source.Info { return d.info }

// Close closes the device and detaches the disk from the proxy.
func (d *hotAddDisk) Close() error {
	d.once.Do(func() { d.err = errors.Join(d.Disk.Close(), d.detach()) })
	return d.err
}
