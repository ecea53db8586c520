package vsphererestore

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Disk is a disk of the restore point: a restorefs.Disk.
type Disk interface {
	io.ReaderAt
	Size() int64
}

// Request is a full restore of a point to vSphere.
type Request struct {
	Client *vsphere.Client
	// Datacenter is the datacenter's inventory path ("DC0").
	Datacenter string
	// Config is the recorded configuration; Disks the point's disks, by
	// their index in the point.
	Config *repo.VMConfig
	Disks  []Disk
	// Name of the new VM (default: the recorded one).
	Name string
	// Datastore for the VM and its disks (default: the first disk's).
	Datastore string
	// Host or Cluster to run the VM on (default: a host that mounts the
	// datastore); Folder its inventory folder (default: the datacenter's
	// VM folder).
	Host, Cluster, Folder string
	// Networks maps recorded network names to the ones to connect to.
	Networks map[string]string
	// Force replaces a VM of the same name: powered off and destroyed.
	Force   bool
	PowerOn bool
	// Sparse uploads each disk as a monolithicSparse VMDK without its
	// zero chunks, which vSphere converts into a thin disk
	// (CopyVirtualDisk_Task), instead of a flat extent and its
	// descriptor.
	Sparse bool
	// Progress, if set, is called with the number of disk bytes uploaded.
	Progress func(n int64)
}

// Result says what a restore made.
type Result struct {
	VM        string       `json:"vm"`
	MoRef     string       `json:"moref"`
	Datastore string       `json:"datastore"`
	Host      string       `json:"host,omitempty"`
	Disks     []DiskResult `json:"disks"`
	NICs      []NICResult  `json:"nics,omitempty"`
	// BytesUploaded counts the extents' bytes sent to the datastore.
	BytesUploaded int64 `json:"bytes_uploaded"`
	// Replaced is set when an existing VM of that name was destroyed
	// first; MACsKept when it was the original, whose MAC addresses the
	// new VM took over.
	Replaced  bool `json:"replaced"`
	MACsKept  bool `json:"macs_kept"`
	PoweredOn bool `json:"powered_on"`
}

// DiskResult is one restored disk.
type DiskResult struct {
	Index      int    `json:"index"`
	Controller string `json:"controller"`
	Unit       int    `json:"unit"`
	File       string `json:"file"`
	// Format is how the disk was uploaded: "flat" or "sparse".
	Format string `json:"format"`
	// Bytes were sent to the datastore.
	Bytes int64 `json:"bytes"`
}

// Upload formats.
const (
	FormatFlat   = "flat"
	FormatSparse = "sparse"
)

// NICResult is one recreated network adapter.
type NICResult struct {
	Model   string `json:"model"`
	Network string `json:"network"`
}

// Restore creates a VM from the point's configuration, uploads its disks
// and powers it on if asked. See the package documentation.
func Restore(ctx context.Context, req Request) (*Result, error) {
	name, err := req.check()
	if err != nil {
		return nil, err
	}
	c := req.Client.Client
	f := find.NewFinder(c, false)
	dc, err := f.Datacenter(ctx, req.Datacenter)
	if err != nil {
		return nil, fmt.Errorf("datacenter %q: %w", req.Datacenter, err)
	}
	f.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		return nil, err
	}
	existing, err := vmsNamed(ctx, req.Client, folders.VmFolder, name)
	if err != nil {
		return nil, err
	}
	switch {
	case len(existing) > 1:
		return nil, fmt.Errorf("%w: %d VMs are named %q in %s; give another name (--force replaces one VM, never several)", ErrExists, len(existing), name, req.Datacenter)
	case len(existing) > 0 && !req.Force:
		return nil, fmt.Errorf("%w: %q in %s; give another name or --force to power it off and destroy it", ErrExists, name, req.Datacenter)
	}
	p, err := req.place(ctx, f, folders.VmFolder)
	if err != nil {
		return nil, err
	}
	res := &Result{VM: name, Datastore: p.ds.Name(), Host: p.hostName, Replaced: len(existing) > 0}
	res.MACsKept = replacesOriginal(ctx, existing, req.Config, name)
	spec, err := req.createSpec(ctx, f, name, p.ds.Name(), res)
	if err != nil {
		return nil, err
	}
	for _, vm := range existing {
		if err := destroy(ctx, vm); err != nil {
			return nil, fmt.Errorf("replace VM %q: %w", name, err)
		}
	}
	task, err := p.folder.CreateVM(ctx, spec, p.pool, p.host)
	if err != nil {
		return nil, fmt.Errorf("create VM %q: %w", name, err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return nil, fmt.Errorf("create VM %q: %w", name, err)
	}
	vm := object.NewVirtualMachine(c, info.Result.(types.ManagedObjectReference))
	res.MoRef = vm.Reference().Value
	if err := req.finish(ctx, vm, dc, p.ds, res); err != nil {
		if derr := destroy(context.WithoutCancel(ctx), vm); derr != nil {
			return nil, fmt.Errorf("%w (and the half-restored VM %q could not be removed: %v)", err, name, derr)
		}
		return nil, fmt.Errorf("%w (the half-restored VM %q was removed)", err, name)
	}
	return res, nil
}

// check validates the request and returns the VM's name.
func (req *Request) check() (string, error) {
	cfg := req.Config
	if cfg == nil {
		return "", ErrNoConfig
	}
	if cfg.Platform != "" && cfg.Platform != "vsphere" {
		return "", fmt.Errorf("%w: the point records a %s VM", ErrNoConfig, cfg.Platform)
	}
	name := req.Name
	if name == "" {
		name = cfg.Name
	}
	if err := checkName(name); err != nil {
		return "", err
	}
	if len(cfg.Disks) == 0 {
		return "", fmt.Errorf("%w: no disks recorded", ErrNoConfig)
	}
	for _, d := range cfg.Disks {
		if d.Index < 0 || d.Index >= len(req.Disks) {
			return "", fmt.Errorf("%w: recorded disk %d is not in the point", ErrNoConfig, d.Index)
		}
		size := req.Disks[d.Index].Size()
		if size%sectorSize != 0 || size <= 0 {
			return "", fmt.Errorf("disk %d: %d bytes is not a whole number of 512-byte sectors", d.Index, size)
		}
		if _, err := diskController(d); err != nil {
			return "", err
		}
	}
	return name, nil
}

// checkName refuses names that cannot name a VM directory.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 80 || strings.ContainsAny(name, "/\\[]%") {
		return fmt.Errorf("VM name %q: want 1–80 characters without / \\ [ ] %%", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("VM name %q: control characters", name)
		}
	}
	return nil
}

// vmsNamed finds the VMs of the given name anywhere below folder.
func vmsNamed(ctx context.Context, c *vsphere.Client, folder *object.Folder, name string) ([]*object.VirtualMachine, error) {
	v, err := view.NewManager(c.Client).CreateContainerView(ctx, folder.Reference(), []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer func() { _ = v.Destroy(context.WithoutCancel(ctx)) }()
	refs, err := v.Find(ctx, []string{"VirtualMachine"}, property.Match{"name": name})
	if err != nil {
		return nil, fmt.Errorf("look for VM %q: %w", name, err)
	}
	out := make([]*object.VirtualMachine, len(refs))
	for i, r := range refs {
		out[i] = object.NewVirtualMachine(c.Client, r)
	}
	return out, nil
}

// replacesOriginal reports whether the one VM being replaced is the one
// the point was taken of (its instance UUID, or without one its name).
func replacesOriginal(ctx context.Context, existing []*object.VirtualMachine, cfg *repo.VMConfig, name string) bool {
	if len(existing) != 1 {
		return false
	}
	if cfg.UUID == "" {
		return name == cfg.Name
	}
	var vm mo.VirtualMachine
	if err := existing[0].Properties(ctx, existing[0].Reference(), []string{"config.instanceUuid"}, &vm); err != nil || vm.Config == nil {
		return false
	}
	return strings.EqualFold(vm.Config.InstanceUuid, cfg.UUID)
}

// destroy powers the VM off if it runs and destroys it with its files.
func destroy(ctx context.Context, vm *object.VirtualMachine) error {
	state, err := vm.PowerState(ctx)
	if err != nil {
		return err
	}
	if state != types.VirtualMachinePowerStatePoweredOff {
		task, err := vm.PowerOff(ctx)
		if err != nil {
			return fmt.Errorf("power off: %w", err)
		}
		if err := task.Wait(ctx); err != nil {
			return fmt.Errorf("power off: %w", err)
		}
	}
	task, err := vm.Destroy(ctx)
	if err != nil {
		return fmt.Errorf("destroy: %w", err)
	}
	if err := task.Wait(ctx); err != nil {
		return fmt.Errorf("destroy: %w", err)
	}
	return nil
}
