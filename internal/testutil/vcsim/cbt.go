package vcsim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source/file"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// CBTBlock is the granularity of the simulated changed block tracking.
const CBTBlock = 64 << 10

// CBT adds changed block tracking to the simulator's VMs, over the real
// disk files in its datastore directories:
//
//   - CreateSnapshot of a VM with changeTrackingEnabled records, per
//     disk, a new change ID ("52 xx … xx/N", the part before "/" names
//     the tracking instance) and the hash of every non-zero 64 KiB block
//     of the disk's flat file; the ID goes on the disk backing of the VM's
//     configuration, which the snapshot copies.
//   - QueryChangedDiskAreas(snapshot, key, start, "*") answers the
//     non-zero blocks of the file; with a recorded ID the blocks that
//     differ between that record and the file now. An unknown ID is a
//     FileFault, as vSphere answers it. Each answer covers at most
//     PageSize bytes from start, so a client must page.
//
// Reset forgets every ID and instance (CBT reset); Forget forgets the IDs
// only; FailQuiesce makes quiesced snapshots fail.
type CBT struct {
	sim *Sim
	// PageSize is the span of disk one QueryChangedDiskAreas answer covers.
	PageSize int64
	// OnQuery, when set, runs at the start of every QueryChangedDiskAreas
	// (holding the VM's lock): a test can stop a backup there.
	OnQuery func()
	// OnMethod, when set, runs before every API call with the method's
	// name ("CreateSnapshot_Task", "WaitForUpdatesEx"); set it before the
	// calls it should see.
	OnMethod func(name string)

	mu          sync.Mutex
	seq         int
	instances   map[string]string     // flat file → tracking instance
	records     map[string]*cbtRecord // change ID → record
	failQuiesce bool
	queries     int
}

// cbtRecord is a disk's content when a change ID was handed out.
type cbtRecord struct {
	file   string
	blocks map[int64][sha256.Size]byte // block number → hash, non-zero blocks
}

// CBT installs the changed block tracking extension (once per simulator)
// and returns it. It sets the model's Map().Handler, chaining to a handler
// set before; its VM view is installed in a session's registry (which the
// simulator consults before its map) on the session's first snapshot or
// QueryChangedDiskAreas call on that VM, and stays there.
func (s *Sim) CBT() *CBT {
	s.cbtOnce.Do(func() {
		c := &CBT{sim: s, PageSize: 1 << 30, instances: map[string]string{}, records: map[string]*cbtRecord{}}
		prev := s.Model.Map().Handler
		s.Model.Map().Handler = func(ctx *simulator.Context, m *simulator.Method) (mo.Reference, types.BaseMethodFault) {
			if c.OnMethod != nil {
				c.OnMethod(m.Name)
			}
			if m.This.Type == "VirtualMachine" && ctx.Session != nil {
				switch m.Name {
				case "CreateSnapshot_Task", "CreateSnapshotEx_Task", "QueryChangedDiskAreas":
					c.wrap(ctx, m.This)
				}
			}
			if prev != nil {
				return prev(ctx, m)
			}
			return nil, nil
		}
		s.cbt = c
	})
	return s.cbt
}

// wrap puts the CBT view of a VM into the calling session's registry,
// which the simulator consults before its own map (an object returned by
// Map().Handler would be replaced by the map's). The map keeps the plain
// VM, which the simulator's own code type-asserts.
func (c *CBT) wrap(ctx *simulator.Context, ref types.ManagedObjectReference) {
	if _, ok := ctx.Session.Registry.Get(ref).(*cbtVM); ok {
		return
	}
	if vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine); ok {
		ctx.Session.Registry.Put(&cbtVM{VirtualMachine: vm, cbt: c})
	}
}

// Reset forgets every change ID and tracking instance, as a CBT reset
// (disabling and enabling tracking) does: later IDs have a new instance.
func (c *CBT) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.instances = map[string]string{}
	c.records = map[string]*cbtRecord{}
}

// Forget forgets every change ID but keeps the instances: a stored ID is
// then refused with a FileFault.
func (c *CBT) Forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = map[string]*cbtRecord{}
}

// FailQuiesce makes quiesced snapshots fail (as with VMware Tools not
// running) while on.
func (c *CBT) FailQuiesce(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failQuiesce = on
}

// Queries counts the QueryChangedDiskAreas calls answered.
func (c *CBT) Queries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queries
}

// cbtVM is a VM with the CBT methods, for the duration of one call.
type cbtVM struct {
	*simulator.VirtualMachine
	cbt *CBT
}

func (vm *cbtVM) CreateSnapshotTask(ctx *simulator.Context, req *types.CreateSnapshot_Task) soap.HasFault {
	if fault := vm.beforeSnapshot(ctx, req.Quiesce); fault != nil {
		return &methods.CreateSnapshot_TaskBody{Res: &types.CreateSnapshot_TaskResponse{Returnval: vm.failedTask(ctx, fault)}}
	}
	return vm.VirtualMachine.CreateSnapshotTask(ctx, req)
}

func (vm *cbtVM) CreateSnapshotExTask(ctx *simulator.Context, req *types.CreateSnapshotEx_Task) soap.HasFault {
	if fault := vm.beforeSnapshot(ctx, req.QuiesceSpec != nil); fault != nil {
		return &methods.CreateSnapshotEx_TaskBody{Res: &types.CreateSnapshotEx_TaskResponse{Returnval: vm.failedTask(ctx, fault)}}
	}
	return vm.VirtualMachine.CreateSnapshotExTask(ctx, req)
}

func (vm *cbtVM) failedTask(ctx *simulator.Context, fault types.BaseMethodFault) types.ManagedObjectReference {
	return simulator.CreateTask(vm.VirtualMachine, "createSnapshot", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, fault
	}).Run(ctx)
}

// beforeSnapshot fails a quiesced snapshot when asked to, and records a
// new change ID on each disk of a VM with tracking on. The snapshot task
// copies the VM's configuration, and with it the IDs.
func (vm *cbtVM) beforeSnapshot(ctx *simulator.Context, quiesce bool) types.BaseMethodFault {
	c := vm.cbt
	c.mu.Lock()
	fail := c.failQuiesce && quiesce
	c.mu.Unlock()
	if fail {
		return &types.ApplicationQuiesceFault{}
	}
	if vm.Config.ChangeTrackingEnabled == nil || !*vm.Config.ChangeTrackingEnabled {
		return nil
	}
	for _, dev := range vm.Config.Hardware.Device {
		vd, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, ok := vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok || strings.HasPrefix(b.DiskMode, "independent") {
			continue
		}
		flat, err := vm.cbt.sim.flatFile(b.FileName)
		if err != nil {
			return &types.FileFault{File: b.FileName}
		}
		blocks, err := hashBlocks(flat, 0, diskSize(vd))
		if err != nil {
			return &types.FileFault{File: b.FileName}
		}
		b.ChangeId = c.record(flat, blocks)
	}
	return nil
}

// record stores a disk's blocks under a new change ID of its instance.
func (c *CBT) record(flat string, blocks map[int64][sha256.Size]byte) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	inst, ok := c.instances[flat]
	if !ok {
		var b [16]byte
		_, _ = rand.Read(b[:])
		parts := make([]string, len(b))
		for i, x := range b {
			parts[i] = fmt.Sprintf("%02x", x)
		}
		parts[0] = "52"
		inst = strings.Join(parts[:8], " ") + "-" + strings.Join(parts[8:], " ")
		c.instances[flat] = inst
	}
	c.seq++
	id := fmt.Sprintf("%s/%d", inst, c.seq)
	c.records[id] = &cbtRecord{file: flat, blocks: blocks}
	return id
}

func (vm *cbtVM) QueryChangedDiskAreas(ctx *simulator.Context, req *types.QueryChangedDiskAreas) soap.HasFault {
	body := &methods.QueryChangedDiskAreasBody{}
	info, fault := vm.cbt.query(ctx, req)
	if fault != nil {
		body.Fault_ = simulator.Fault("", fault)
		return body
	}
	body.Res = &types.QueryChangedDiskAreasResponse{Returnval: info}
	return body
}

func (c *CBT) query(ctx *simulator.Context, req *types.QueryChangedDiskAreas) (types.DiskChangeInfo, types.BaseMethodFault) {
	if c.OnQuery != nil {
		c.OnQuery()
	}
	vd, b, fault := snapshotDisk(ctx, req)
	if fault != nil {
		return types.DiskChangeInfo{}, fault
	}
	size := diskSize(vd)
	if req.StartOffset < 0 || req.StartOffset >= size {
		return types.DiskChangeInfo{}, &types.InvalidArgument{InvalidProperty: "startOffset"}
	}
	flat, err := c.sim.flatFile(b.FileName)
	if err != nil {
		return types.DiskChangeInfo{}, &types.FileFault{File: b.FileName}
	}
	c.mu.Lock()
	c.queries++
	var rec *cbtRecord
	if req.ChangeId != "*" {
		rec = c.records[req.ChangeId]
	}
	c.mu.Unlock()
	if req.ChangeId != "*" && (rec == nil || rec.file != flat) {
		return types.DiskChangeInfo{}, &types.FileFault{File: b.FileName}
	}
	start := req.StartOffset / CBTBlock * CBTBlock
	end := min(start+c.PageSize, size)
	now, err := hashBlocks(flat, start, end)
	if err != nil {
		return types.DiskChangeInfo{}, &types.FileFault{File: b.FileName}
	}
	return types.DiskChangeInfo{StartOffset: start, Length: end - start, ChangedArea: areas(changedBlocks(rec, now, start, end), start, end, size)}, nil
}

// snapshotDisk finds the disk a query names in the snapshot's
// configuration; it must carry a change ID.
func snapshotDisk(ctx *simulator.Context, req *types.QueryChangedDiskAreas) (*types.VirtualDisk, *types.VirtualDiskFlatVer2BackingInfo, types.BaseMethodFault) {
	if req.Snapshot == nil {
		return nil, nil, &types.InvalidArgument{InvalidProperty: "snapshot"}
	}
	snap, ok := ctx.Map.Get(*req.Snapshot).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return nil, nil, &types.ManagedObjectNotFound{Obj: *req.Snapshot}
	}
	for _, dev := range snap.Config.Hardware.Device {
		if d, ok := dev.(*types.VirtualDisk); ok && d.Key == req.DeviceKey {
			if b, ok := vdBacking(d); ok && b.ChangeId != "" {
				return d, b, nil
			}
		}
	}
	return nil, nil, &types.InvalidArgument{InvalidProperty: "deviceKey"}
}

// changedBlocks are the blocks within [start, end) whose content differs
// from the record (all non-zero blocks without one).
func changedBlocks(rec *cbtRecord, now map[int64][sha256.Size]byte, start, end int64) map[int64]bool {
	changed := map[int64]bool{}
	for blk, h := range now {
		if rec == nil || rec.blocks[blk] != h {
			changed[blk] = true
		}
	}
	if rec != nil {
		for blk := range rec.blocks {
			if _, ok := now[blk]; !ok && blk*CBTBlock >= start && blk*CBTBlock < end {
				changed[blk] = true // written back to zeros
			}
		}
	}
	return changed
}

// areas turns changed block numbers within [start, end) into coalesced
// areas.
func areas(changed map[int64]bool, start, end, size int64) []types.DiskChangeExtent {
	var out []types.DiskChangeExtent
	for off := start; off < end; off += CBTBlock {
		if !changed[off/CBTBlock] {
			continue
		}
		n := min(int64(CBTBlock), size-off)
		if k := len(out); k > 0 && out[k-1].Start+out[k-1].Length == off {
			out[k-1].Length += n
			continue
		}
		out = append(out, types.DiskChangeExtent{Start: off, Length: n})
	}
	return out
}

func vdBacking(vd *types.VirtualDisk) (*types.VirtualDiskFlatVer2BackingInfo, bool) {
	if vd == nil {
		return nil, false
	}
	b, ok := vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
	return b, ok
}

func diskSize(vd *types.VirtualDisk) int64 {
	if vd.CapacityInBytes > 0 {
		return vd.CapacityInBytes
	}
	return vd.CapacityInKB * 1024
}

// hashBlocks hashes the non-zero 64 KiB blocks of a flat file within
// [start, end), reading only its data ranges (SEEK_DATA).
func hashBlocks(path string, start, end int64) (map[int64][sha256.Size]byte, error) {
	out := map[int64][sha256.Size]byte{}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() == 0 {
		return out, nil
	}
	ctx := context.Background()
	d, err := file.Open(ctx, path, file.Options{Format: file.FormatRaw})
	if err != nil {
		return nil, err
	}
	defer d.Close()
	ext, err := d.Allocated(ctx)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, CBTBlock)
	zero := make([]byte, CBTBlock)
	for _, e := range ext {
		first := max(e.Offset, start) / CBTBlock * CBTBlock
		for off := first; off < min(e.End(), end); off += CBTBlock {
			n, err := d.ReadAt(buf, off)
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			if bytes.Equal(buf[:n], zero[:n]) {
				continue
			}
			out[off/CBTBlock] = sha256.Sum256(buf[:n])
		}
	}
	return out, nil
}

// flatFile is the local path of the flat extent of a disk descriptor
// "[ds] dir/disk.vmdk" (the simulator's disks are dir/disk-flat.vmdk).
func (s *Sim) flatFile(descriptor string) (string, error) {
	ds, rel, ok := strings.Cut(strings.TrimPrefix(descriptor, "["), "] ")
	if !ok || !strings.HasSuffix(rel, ".vmdk") {
		return "", fmt.Errorf("vcsim: disk file %q: want [ds] dir/disk.vmdk", descriptor)
	}
	dir, err := s.datastoreDir(ds)
	if err != nil {
		return "", err
	}
	return dir + "/" + strings.TrimSuffix(rel, ".vmdk") + "-flat.vmdk", nil
}

// datastoreDir is the local directory of the datastore named name.
func (s *Sim) datastoreDir(name string) (string, error) {
	for _, e := range s.Model.Map().All("Datastore") {
		if ds, ok := e.(*simulator.Datastore); ok && ds.Name == name {
			return ds.Info.GetDatastoreInfo().Url, nil
		}
	}
	return "", fmt.Errorf("vcsim: no datastore %q", name)
}

// DatastoreDir returns the local directory behind a datastore
// ("LocalDS_0").
func (s *Sim) DatastoreDir(t testing.TB, name string) string {
	t.Helper()
	dir, err := s.datastoreDir(name)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// VM returns the simulator's VM named name.
func (s *Sim) VM(t testing.TB, name string) *simulator.VirtualMachine {
	t.Helper()
	for _, e := range s.Model.Map().All("VirtualMachine") {
		if vm, ok := e.(*simulator.VirtualMachine); ok && vm.Name == name {
			return vm
		}
	}
	t.Fatalf("vcsim: no VM %q", name)
	return nil
}

// Disk is one disk of a simulator VM: its backing file and local flat file.
type Disk struct {
	Key        int32
	Descriptor string // "[LocalDS_0] VM/disk1.vmdk"
	Flat       string // local path of the flat extent
	Capacity   int64
}

// Disks lists the flat-backed disks of a VM in device order.
func (s *Sim) Disks(t testing.TB, vmName string) []Disk {
	t.Helper()
	vm := s.VM(t, vmName)
	var out []Disk
	for _, dev := range vm.Config.Hardware.Device {
		vd, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, ok := vdBacking(vd)
		if !ok {
			continue
		}
		flat, err := s.flatFile(b.FileName)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Disk{Key: vd.Key, Descriptor: b.FileName, Flat: flat, Capacity: diskSize(vd)})
	}
	return out
}

// WriteDisk writes data at off into disk i of a VM: the flat file is
// first grown (sparse) to the disk's capacity, as a real flat extent is.
func (s *Sim) WriteDisk(t testing.TB, vmName string, i int, off int64, data []byte) {
	t.Helper()
	disks := s.Disks(t, vmName)
	if i >= len(disks) {
		t.Fatalf("vcsim: VM %s has %d disks", vmName, len(disks))
	}
	d := disks[i]
	fixDescriptor(t, d.Flat)
	if off < 0 || off+int64(len(data)) > d.Capacity {
		t.Fatalf("vcsim: write %d bytes at %d beyond the disk's %d", len(data), off, d.Capacity)
	}
	f, err := os.OpenFile(d.Flat, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < d.Capacity {
		if err := f.Truncate(d.Capacity); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// fixDescriptor (run by Start and WriteDisk) makes the simulator's descriptor of a flat file say what
// a real ESXi writes for a disk without a parent: parentCID=ffffffff (the
// simulator writes 00000000, which names a parent).
func fixDescriptor(t testing.TB, flat string) {
	t.Helper()
	desc := strings.TrimSuffix(flat, "-flat.vmdk") + ".vmdk"
	b, err := os.ReadFile(desc)
	if err != nil {
		t.Fatal(err)
	}
	fixed := strings.Replace(string(b), "parentCID=00000000", "parentCID=ffffffff", 1)
	if fixed != string(b) {
		if err := os.WriteFile(desc, []byte(fixed), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// SetDiskCapacity resizes disk i of a VM (before any backup): the device's
// capacity and the descriptor's extent, so tests work on small disks.
func (s *Sim) SetDiskCapacity(t testing.TB, vmName string, i int, size int64) {
	t.Helper()
	if size <= 0 || size%512 != 0 {
		t.Fatalf("vcsim: disk size %d is not a positive multiple of 512", size)
	}
	vm := s.VM(t, vmName)
	n := 0
	for _, dev := range vm.Config.Hardware.Device {
		vd, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		b, ok := vdBacking(vd)
		if !ok {
			continue
		}
		if n++; n-1 != i {
			continue
		}
		vd.CapacityInBytes, vd.CapacityInKB = size, size/1024
		flat, err := s.flatFile(b.FileName)
		if err != nil {
			t.Fatal(err)
		}
		desc := strings.TrimSuffix(flat, "-flat.vmdk") + ".vmdk"
		text, err := os.ReadFile(desc)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, line := range strings.Split(string(text), "\n") {
			if f := strings.Fields(line); len(f) == 4 && f[0] == "RW" && (f[2] == "VMFS" || f[2] == "FLAT") {
				line = fmt.Sprintf("RW %d %s %s", size/512, f[2], f[3])
			}
			out = append(out, line)
		}
		if err := os.WriteFile(desc, []byte(strings.Join(out, "\n")), 0o600); err != nil {
			t.Fatal(err)
		}
		fixDescriptor(t, flat)
		return
	}
	t.Fatalf("vcsim: VM %s has no disk %d", vmName, i)
}
