package vsphererestore

import (
	"context"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// maxCBTCalls bounds the QueryChangedDiskAreas calls for one disk: each
// answers for a stretch of the disk, at least a few GiB.
const maxCBTCalls = 1 << 16

// changedAreas asks vSphere which areas of the VM's disk (device key)
// changed since changeID, in the VM's current state. The answer comes
// from outside: areas are checked against the disk's size.
func changedAreas(ctx context.Context, c *vsphere.Client, vm *object.VirtualMachine, key int32, size int64, changeID string) ([]pipeline.Area, error) {
	var out []pipeline.Area
	for off, calls := int64(0), 0; off < size; calls++ {
		if calls == maxCBTCalls {
			return nil, fmt.Errorf("QueryChangedDiskAreas: no end after %d calls", calls)
		}
		res, err := methods.QueryChangedDiskAreas(ctx, c.Client, &types.QueryChangedDiskAreas{
			This: vm.Reference(), DeviceKey: key, StartOffset: off, ChangeId: changeID})
		if err != nil {
			return nil, err
		}
		info := res.Returnval
		if info.StartOffset != off || info.Length <= 0 || info.Length > size-off {
			return nil, fmt.Errorf("QueryChangedDiskAreas answered for [%d, +%d) when asked from %d of %d bytes", info.StartOffset, info.Length, off, size)
		}
		for _, a := range info.ChangedArea {
			if a.Start < off || a.Length <= 0 || a.Start-off > info.Length || a.Length > info.Length-(a.Start-off) {
				return nil, fmt.Errorf("QueryChangedDiskAreas: area [%d, +%d) outside [%d, +%d)", a.Start, a.Length, off, info.Length)
			}
			out = append(out, pipeline.Area{Offset: a.Start, Length: a.Length})
		}
		off += info.Length
	}
	return out, nil
}
