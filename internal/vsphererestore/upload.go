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
	"sync/atomic"

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
func (req *Request) finish(ctx context.Context, vm *object.VirtualMachine, dc *object.Datacenter, ds *object.Datastore, res *Result) error {
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
		if err := req.uploadDisk(ctx, dc, ds, d, file, res); err != nil {
			return err
		}
		dev, err := attachSpec(devs, d, file, ds.Reference(), req.Disks[d.Index].Size(), int32(-200-i), req.Sparse)
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

// uploadDisk streams disk d of the point into the VM's directory: the
// extent NAME-flat.vmdk and the descriptor NAME.vmdk naming it, or with
// Sparse a monolithicSparse NAME-sparse.vmdk without the zero chunks that
// vSphere then converts into the thin disk NAME.vmdk.
func (req *Request) uploadDisk(ctx context.Context, dc *object.Datacenter, ds *object.Datastore, d repo.VMDisk, file vsphere.DatastorePath, res *Result) error {
	src := req.Disks[d.Index]
	size := src.Size()
	base := path.Base(file.Path)
	c, _ := diskController(d) // checked
	var sent atomic.Int64
	progress := func(n int64) {
		sent.Add(n)
		if req.Progress != nil {
			req.Progress(n)
		}
	}
	dr := DiskResult{Index: d.Index, Controller: c.String(), Unit: d.Unit, File: file.String(), Format: FormatFlat}
	if req.Sparse {
		if err := req.uploadSparse(ctx, ds, dc, src, file, c.kind, progress); err != nil {
			return fmt.Errorf("disk %d: %w", d.Index, err)
		}
		dr.Format = FormatSparse
	} else {
		flat := strings.TrimSuffix(base, ".vmdk") + "-flat.vmdk"
		r := &progressReader{r: io.NewSectionReader(src, 0, size), fn: progress}
		if err := ds.Upload(ctx, r, path.Join(path.Dir(file.Path), flat), &soap.Upload{Method: "PUT", Type: "application/octet-stream", ContentLength: size}); err != nil {
			return fmt.Errorf("upload disk %d to %s: %w", d.Index, file, err)
		}
		desc, err := descriptor(size, flat, c.kind, d.Thin, req.Config.Version, false)
		if err != nil {
			return err
		}
		if err := ds.Upload(ctx, bytes.NewReader(desc), file.Path, &soap.Upload{Method: "PUT", Type: "text/plain", ContentLength: int64(len(desc))}); err != nil {
			return fmt.Errorf("upload the descriptor of disk %d to %s: %w", d.Index, file, err)
		}
	}
	dr.Bytes = sent.Load()
	if rest := size - dr.Bytes; rest > 0 && req.Progress != nil {
		req.Progress(rest) // the zero chunks left out
	}
	res.BytesUploaded += dr.Bytes
	res.Disks = append(res.Disks, dr)
	return nil
}

// attachSpec is the disk device for an uploaded descriptor, at the
// recorded controller and unit of the new VM (thin when converted from a
// sparse upload).
func attachSpec(devs object.VirtualDeviceList, d repo.VMDisk, file vsphere.DatastorePath, ds types.ManagedObjectReference, size int64, key int32, sparse bool) (*types.VirtualDisk, error) {
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
	fb := types.VirtualDeviceFileBackingInfo{FileName: file.String(), Datastore: &ds}
	backing := &types.VirtualDiskFlatVer2BackingInfo{
		VirtualDeviceFileBackingInfo: fb, DiskMode: mode, ThinProvisioned: types.NewBool(d.Thin || sparse)}
	return &types.VirtualDisk{
		VirtualDevice: types.VirtualDevice{
			Key:           key,
			ControllerKey: vc.GetVirtualController().Key,
			UnitNumber:    &unit,
			Backing:       backing,
		},
		CapacityInBytes: size,
		CapacityInKB:    size / 1024,
	}, nil
}

// descriptor describes a disk of size bytes in one extent: a VMFS flat
// extent, or the sparse extent a monolithicSparse file embeds it in.
func descriptor(size int64, extent, controller string, thin bool, hwVersion string, sparse bool) ([]byte, error) {
	d := vmdk.NewDescriptor(vmdk.Extent{Type: "VMFS", Permission: "RW", Size: size / sectorSize, Info: extent})
	if sparse {
		d.Type, d.Extent[0].Type = "monolithicSparse", "SPARSE"
	}
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

// uploadSparse streams the disk as a monolithicSparse VMDK without its
// zero chunks beside file, has vSphere convert it into the thin disk file
// (CopyVirtualDisk_Task, as vmkfstools -i does) and deletes the upload.
func (req *Request) uploadSparse(ctx context.Context, ds *object.Datastore, dc *object.Datacenter, src Disk, file vsphere.DatastorePath, kind string, progress func(int64)) error {
	name := strings.TrimSuffix(path.Base(file.Path), ".vmdk") + "-sparse.vmdk"
	tmp := vsphere.DatastorePath{Datastore: file.Datastore, Path: path.Join(path.Dir(file.Path), name)}
	desc, err := descriptor(src.Size(), name, kind, true, req.Config.Version, true)
	if err != nil {
		return err
	}
	img, err := newSparseImage(src, desc)
	if err != nil {
		return err
	}
	body := img.reader(ctx)
	defer body.Close()
	if err := ds.Upload(ctx, &progressReader{r: body, fn: progress}, tmp.Path, &soap.Upload{Method: "PUT", Type: "application/octet-stream", ContentLength: img.Len()}); err != nil {
		return fmt.Errorf("upload %s: %w", tmp, err)
	}
	adapter := types.VirtualDiskAdapterTypeLsiLogic
	switch kind {
	case "ide":
		adapter = types.VirtualDiskAdapterTypeIde
	case "buslogic":
		adapter = types.VirtualDiskAdapterTypeBusLogic
	}
	spec := &types.FileBackedVirtualDiskSpec{VirtualDiskSpec: types.VirtualDiskSpec{
		AdapterType: string(adapter), DiskType: string(types.VirtualDiskTypeThin)}}
	task, err := object.NewVirtualDiskManager(ds.Client()).CopyVirtualDisk(ctx, tmp.String(), dc, file.String(), dc, spec, false)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("convert %s into the thin disk %s: %w", tmp, file, err)
	}
	task, err = object.NewFileManager(ds.Client()).DeleteDatastoreFile(ctx, tmp.String(), dc)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("delete the uploaded %s: %w", tmp, err)
	}
	return nil
}
