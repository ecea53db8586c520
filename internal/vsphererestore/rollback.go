package vsphererestore

import (
	"context"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"golang.org/x/sys/unix"
)

// Rollback methods.
const (
	MethodCBT     = "cbt"
	MethodCompare = "compare"
)

// RollbackRequest rolls a VM's own disks back to a point.
type RollbackRequest struct {
	Client *vsphere.Client
	// VM is the VM's inventory path ("/DC0/vm/web1").
	VM       string
	Manifest *repo.Manifest
	// Disks are the point's disks, by index.
	Disks []*restorefs.Disk
	// DatastorePaths maps datastore names to the directories where they
	// are mounted on this machine.
	DatastorePaths map[string]string
	// Force rolls back a VM whose instance UUID is not the recorded one.
	Force    bool
	Workers  int
	Progress func(n int64)
}

// RollbackResult says what a rollback did.
type RollbackResult struct {
	VM            string               `json:"vm"`
	Disks         []RollbackDiskResult `json:"disks"`
	BytesCompared int64                `json:"bytes_compared"`
	BytesWritten  int64                `json:"bytes_written"`
	// CBTReset is set when changed block tracking was reset before the
	// first write (the next backup reads the disks in full).
	CBTReset bool `json:"cbt_reset"`
}

// RollbackDiskResult is one disk's rollback.
type RollbackDiskResult struct {
	Index int    `json:"index"`
	File  string `json:"file"`
	// Method is "cbt" (only the areas changed since the point were
	// compared) or "compare" (every chunk); Reason says why not CBT.
	Method         string `json:"method"`
	Reason         string `json:"reason,omitempty"`
	BytesCompared  int64  `json:"bytes_compared"`
	BytesWritten   int64  `json:"bytes_written"`
	ChunksCompared int    `json:"chunks_compared"`
	ChunksWritten  int    `json:"chunks_written"`
}

// rollbackDisk is one disk of the VM, opened for the rollback.
type rollbackDisk struct {
	cfg  repo.VMDisk
	dev  *types.VirtualDisk
	file vsphere.DatastorePath
	flat *os.File
}

// Rollback writes into the powered-off VM's disks what differs from the
// point. See the package documentation.
func Rollback(ctx context.Context, req RollbackRequest) (*RollbackResult, error) {
	m := req.Manifest
	if m.Config == nil || len(m.Config.Disks) == 0 {
		return nil, ErrNoConfig
	}
	vm, err := find.NewFinder(req.Client.Client, false).VirtualMachine(ctx, req.VM)
	if err != nil {
		return nil, fmt.Errorf("VM %s: %w", req.VM, err)
	}
	var vmo mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"name", "runtime.powerState", "config", "snapshot"}, &vmo); err != nil {
		return nil, err
	}
	if err := req.checkVM(&vmo); err != nil {
		return nil, err
	}
	disks, err := req.openDisks(object.VirtualDeviceList(vmo.Config.Hardware.Device))
	defer func() {
		for _, d := range disks {
			_ = d.flat.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	cbt := vmo.Config.ChangeTrackingEnabled != nil && *vmo.Config.ChangeTrackingEnabled
	reset := &cbtReset{vm: vm, enabled: cbt}
	res := &RollbackResult{VM: vmo.Name}
	for _, d := range disks {
		dr, err := req.rollbackDisk(ctx, vm, d, cbt, reset)
		res.Disks = append(res.Disks, dr)
		res.BytesCompared += dr.BytesCompared
		res.BytesWritten += dr.BytesWritten
		res.CBTReset = reset.done.Load()
		if err != nil {
			return res, fmt.Errorf("roll back disk %d (%s): %w", d.cfg.Index, d.file, err)
		}
	}
	return res, nil
}

// checkVM refuses a VM that is not powered off, has snapshots or is not
// the one the point was taken of.
func (req *RollbackRequest) checkVM(vmo *mo.VirtualMachine) error {
	if s := vmo.Runtime.PowerState; s != types.VirtualMachinePowerStatePoweredOff {
		return fmt.Errorf("%w: %s is %s; power it off first (a rollback rewrites its disks in place)", ErrPoweredOn, vmo.Name, s)
	}
	if vmo.Snapshot != nil && vmo.Snapshot.CurrentSnapshot != nil {
		return fmt.Errorf("%w: %s has snapshots, so its disks are delta files: delete the snapshots first", ErrMismatch, vmo.Name)
	}
	cfg := req.Manifest.Config
	if cfg.UUID != "" && !strings.EqualFold(cfg.UUID, vmo.Config.InstanceUuid) && !req.Force {
		return fmt.Errorf("%w: %s (instance UUID %s) is not the VM the point was taken of (%s, %s); --force rolls it back anyway",
			ErrMismatch, vmo.Name, vmo.Config.InstanceUuid, cfg.Name, cfg.UUID)
	}
	return nil
}

// openDisks finds each recorded disk on the VM and opens its flat
// extent for writing, confined to its datastore's directory. Every disk
// is checked before anything is written.
func (req *RollbackRequest) openDisks(devs object.VirtualDeviceList) ([]rollbackDisk, error) {
	var out []rollbackDisk
	for _, cd := range req.Manifest.Config.Disks {
		if cd.Index < 0 || cd.Index >= len(req.Disks) {
			return out, fmt.Errorf("%w: recorded disk %d is not in the point", ErrNoConfig, cd.Index)
		}
		size := req.Disks[cd.Index].Size()
		c, err := diskController(cd)
		if err != nil {
			return out, err
		}
		dev := diskAt(devs, c, cd.Unit)
		if dev == nil {
			return out, fmt.Errorf("%w: the VM has no disk at %s unit %d (disk %d of the point)", ErrMismatch, c, cd.Unit, cd.Index)
		}
		if dev.CapacityInBytes != size {
			return out, fmt.Errorf("%w: the disk at %s unit %d holds %d bytes, the point's disk %d has %d", ErrMismatch, c, cd.Unit, dev.CapacityInBytes, cd.Index, size)
		}
		b, ok := dev.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok || b.Parent != nil {
			return out, fmt.Errorf("%w: the disk at %s unit %d is not a flat disk without parent (%T)", ErrMismatch, c, cd.Unit, dev.Backing)
		}
		d, err := req.openFlat(b.FileName, size)
		if err != nil {
			return out, err
		}
		d.cfg, d.dev = cd, dev
		out = append(out, d)
	}
	return out, nil
}

// openFlat opens the flat extent of the descriptor "[ds] dir/disk.vmdk".
func (req *RollbackRequest) openFlat(name string, size int64) (rollbackDisk, error) {
	file, err := vsphere.ParseDatastorePath(name)
	if err != nil {
		return rollbackDisk{}, err
	}
	root, ok := req.DatastorePaths[file.Datastore]
	if !ok {
		return rollbackDisk{}, fmt.Errorf("%w %s (disk %s): give --datastore-path %s=DIR, the directory where it is mounted here",
			ErrNoDatastorePath, file.Datastore, file, file.Datastore)
	}
	desc, err := readDescriptor(root, file.Path)
	if err != nil {
		return rollbackDisk{}, err
	}
	extent, err := parseFlatDescriptor(desc, size)
	if err != nil {
		return rollbackDisk{}, fmt.Errorf("%s: %w", file, err)
	}
	f, err := openBeneath(root, path.Join(file.Dir(), extent), unix.O_RDWR)
	if err != nil {
		return rollbackDisk{}, err
	}
	st, err := f.Stat()
	switch {
	case err != nil:
		f.Close()
		return rollbackDisk{}, err
	case !st.Mode().IsRegular() || st.Size() != size:
		f.Close()
		return rollbackDisk{}, fmt.Errorf("%w: %s is not a regular file of %d bytes (it has %d)", ErrMismatch, f.Name(), size, st.Size())
	}
	return rollbackDisk{file: file, flat: f}, nil
}

// rollbackDisk rolls one disk back, by CBT when it can.
func (req *RollbackRequest) rollbackDisk(ctx context.Context, vm *object.VirtualMachine, d rollbackDisk, cbt bool, reset *cbtReset) (RollbackDiskResult, error) {
	dr := RollbackDiskResult{Index: d.cfg.Index, File: d.file.String(), Method: MethodCompare}
	disk := req.Disks[d.cfg.Index]
	var compared atomic.Int64
	o := pipeline.Options{Workers: req.Workers, Progress: func(n int64) {
		compared.Add(n)
		if req.Progress != nil {
			req.Progress(n)
		}
	}}
	t := &flatTarget{f: d.flat, ctx: ctx, reset: reset}
	var areas []pipeline.Area
	changeID := req.Manifest.Disks[d.cfg.Index].ChangeID
	switch {
	case changeID == "":
		dr.Reason = "the point recorded no CBT change ID"
	case !cbt:
		dr.Reason = "changed block tracking is off on the VM"
	default:
		var err error
		if areas, err = changedAreas(ctx, req.Client, vm, d.dev.Key, disk.Size(), changeID); err != nil {
			dr.Reason = "vSphere could not say what changed since the point: " + err.Error()
		} else {
			dr.Method = MethodCBT
		}
	}
	var st pipeline.RollbackStats
	var err error
	if dr.Method == MethodCBT {
		st, err = pipeline.RollbackDiskAreas(ctx, disk, t, areas, o)
	} else {
		st, err = pipeline.RollbackDisk(ctx, disk, t, o)
	}
	dr.BytesCompared, dr.BytesWritten = compared.Load(), st.BytesWritten
	dr.ChunksCompared, dr.ChunksWritten = st.ChunksCompared, st.ChunksWritten
	if err == nil {
		if err = d.flat.Sync(); err != nil {
			err = fmt.Errorf("sync %s: %w", d.flat.Name(), err)
		}
	}
	return dr, err
}

// flatTarget is a flat extent being rolled back: reads and writes at
// their offsets; the first write resets CBT.
type flatTarget struct {
	f     *os.File
	ctx   context.Context
	reset *cbtReset
}

func (t *flatTarget) ReadAt(p []byte, off int64) (int, error) { return t.f.ReadAt(p, off) }

func (t *flatTarget) WriteAt(p []byte, off int64) (int, error) {
	if err := t.reset.do(t.ctx); err != nil {
		return 0, err
	}
	return t.f.WriteAt(p, off)
}

// cbtReset turns changed block tracking off and on again, once, before
// the rollback writes past the VM's back: a change ID taken before would
// otherwise not include the rollback's writes.
type cbtReset struct {
	vm      *object.VirtualMachine
	enabled bool
	once    sync.Once
	err     error
	done    atomic.Bool
}

func (r *cbtReset) do(ctx context.Context) error {
	r.once.Do(func() {
		if !r.enabled {
			return
		}
		for _, on := range []bool{false, true} {
			task, err := r.vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: types.NewBool(on)})
			if err == nil {
				err = task.Wait(ctx)
			}
			if err != nil {
				r.err = fmt.Errorf("reset changed block tracking before writing (nothing written): %w", err)
				return
			}
		}
		r.done.Store(true)
	})
	return r.err
}
