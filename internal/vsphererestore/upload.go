package vsphererestore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vmdk"
)

const sectorSize = 512

// finish uploads the disks into the new VM's directory, attaches them at
// their recorded places and powers the VM on if asked.
func (req *Request) finish(ctx context.Context, vm *object.VirtualMachine, ds *object.Datastore, res *Result) error {
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.files.vmPathName", "config.hardware.device"}, &m); err != nil {
		return err
	}
	vmx, err := vsphere.ParseDatastorePath(m.Config.Files.VmPathName)
	if err != nil {
		return fmt.Errorf("the new VM's files: %w", err)
	}
	devs := object.VirtualDeviceList(m.Config.Hardware.Device)
	var change []types.BaseVirtualDeviceConfigSpec
	for i, d := range req.Config.Disks {
		base := res.VM
		if i > 0 {
			base += "_" + strconv.Itoa(i)
		}
		file := vsphere.DatastorePath{Datastore: ds.Name(), Path: path.Join(vmx.Dir(), base+".vmdk")}
		if err := req.uploadDisk(ctx, ds, d, file, res); err != nil {
			return err
		}
		dev, err := attachSpec(devs, d, file, ds.Reference(), req.Disks[d.Index].Size(), int32(-200-i))
		if err != nil {
			return err
		}
		change = append(change, &types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: dev})
	}
	task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{DeviceChange: change})
	if err != nil {
		return fmt.Errorf("attach the disks: %w", err)
	}
	if err := task.Wait(ctx); err != nil {
		return fmt.Errorf("attach the disks: %w", err)
	}
	if req.PowerOn {
		task, err := vm.PowerOn(ctx)
		if err != nil {
			return fmt.Errorf("power on: %w", err)
		}
		if err := task.Wait(ctx); err != nil {
			return fmt.Errorf("power on: %w", err)
		}
		res.PoweredOn = true
	}
	return nil
}

// uploadDisk streams disk d of the point into NAME-flat.vmdk and writes
// the descriptor NAME.vmdk naming it.
func (req *Request) uploadDisk(ctx context.Context, ds *object.Datastore, d repo.VMDisk, file vsphere.DatastorePath, res *Result) error {
	src := req.Disks[d.Index]
	size := src.Size()
	flat := strings.TrimSuffix(path.Base(file.Path), ".vmdk") + "-flat.vmdk"
	var r io.Reader = io.NewSectionReader(src, 0, size)
	if req.Progress != nil {
		r = &progressReader{r: r, fn: req.Progress}
	}
	if err := ds.Upload(ctx, r, path.Join(path.Dir(file.Path), flat), &soap.Upload{Method: "PUT", Type: "application/octet-stream", ContentLength: size}); err != nil {
		return fmt.Errorf("upload disk %d to %s: %w", d.Index, file, err)
	}
	c, _ := diskController(d) // checked
	desc, err := descriptor(size, flat, c.kind, d.Thin, req.Config.Version)
	if err != nil {
		return err
	}
	if err := ds.Upload(ctx, bytes.NewReader(desc), file.Path, &soap.Upload{Method: "PUT", Type: "text/plain", ContentLength: int64(len(desc))}); err != nil {
		return fmt.Errorf("upload the descriptor of disk %d to %s: %w", d.Index, file, err)
	}
	res.BytesUploaded += size
	res.Disks = append(res.Disks, DiskResult{Index: d.Index, Controller: c.String(), Unit: d.Unit, File: file.String(), Bytes: size})
	return nil
}

// attachSpec is the disk device for an uploaded descriptor, at the
// recorded controller and unit of the new VM.
func attachSpec(devs object.VirtualDeviceList, d repo.VMDisk, file vsphere.DatastorePath, ds types.ManagedObjectReference, size int64, key int32) (*types.VirtualDisk, error) {
	c, _ := diskController(d)
	vc := findController(devs, c)
	if vc == nil {
		return nil, fmt.Errorf("disk %d: the new VM has no %s controller", d.Index, c)
	}
	mode := d.Mode
	if mode == "" {
		mode = string(types.VirtualDiskModePersistent)
	}
	unit := int32(d.Unit)
	return &types.VirtualDisk{
		VirtualDevice: types.VirtualDevice{
			Key:           key,
			ControllerKey: vc.GetVirtualController().Key,
			UnitNumber:    &unit,
			Backing: &types.VirtualDiskFlatVer2BackingInfo{
				VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: file.String(), Datastore: &ds},
				DiskMode:                     mode,
				ThinProvisioned:              types.NewBool(d.Thin),
			},
		},
		CapacityInBytes: size,
		CapacityInKB:    size / 1024,
	}, nil
}

// descriptor is a VMFS descriptor of one flat extent of size bytes.
func descriptor(size int64, flat, controller string, thin bool, hwVersion string) ([]byte, error) {
	d := vmdk.NewDescriptor(vmdk.Extent{Type: "VMFS", Permission: "RW", Size: size / sectorSize, Info: flat})
	var cid [4]byte
	if _, err := rand.Read(cid[:]); err != nil {
		return nil, err
	}
	d.CID = vmdk.DiskContentID(binary.LittleEndian.Uint32(cid[:]))
	d.ParentCID = 0xffffffff
	adapter, heads := "lsilogic", int64(255)
	switch controller {
	case "ide":
		adapter, heads = "ide", 16
	case "buslogic":
		adapter = "buslogic"
	}
	cyl := min(size/sectorSize/(heads*63), 65535)
	d.DDB["adapterType"] = adapter
	d.DDB["geometry.cylinders"] = strconv.FormatInt(cyl, 10)
	d.DDB["geometry.heads"] = strconv.FormatInt(heads, 10)
	d.DDB["geometry.sectors"] = "63"
	if v, ok := strings.CutPrefix(hwVersion, "vmx-"); ok {
		d.DDB["virtualHWVersion"] = v
	}
	if thin {
		d.DDB["thinProvisioned"] = "1"
	}
	var b bytes.Buffer
	if err := d.Write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r  io.Reader
	fn func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.fn(int64(n))
	}
	return n, err
}
