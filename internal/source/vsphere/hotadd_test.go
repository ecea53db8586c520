package vsphere_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

const proxyName = "DC0_H0_VM1"

// simFinder is the DeviceFinder of the tests, for the simulator only: it
// maps the attached disk's backing file to its flat file in the
// datastore's local directory (a real proxy sees a block device).
func (s *simDisk) simFinder(t testing.TB) vsphere.DeviceFinder {
	return func(_ context.Context, disk *types.VirtualDisk) (string, error) {
		b := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if b.DiskMode != string(types.VirtualDiskModeIndependent_nonpersistent) {
			t.Errorf("attached with disk mode %q, want independent_nonpersistent", b.DiskMode)
		}
		p, err := vsphere.ParseDatastorePath(b.FileName)
		if err != nil {
			return "", err
		}
		return filepath.Join(s.dsDir, strings.TrimSuffix(p.Path, ".vmdk")+"-flat.vmdk"), nil
	}
}

func (s *simDisk) proxy(t *testing.T) *object.VirtualMachine {
	t.Helper()
	finder := find.NewFinder(s.client.Client)
	dc, err := finder.Datacenter(context.Background(), "DC0")
	if err != nil {
		t.Fatal(err)
	}
	finder.SetDatacenter(dc)
	vm, err := finder.VirtualMachine(context.Background(), proxyName)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

// attached returns the proxy's disks backed by the test disk's file.
func (s *simDisk) attached(t *testing.T) []*types.VirtualDisk {
	t.Helper()
	devices, err := s.proxy(t).Device(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []*types.VirtualDisk
	for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		vd := d.(*types.VirtualDisk)
		name := vd.Backing.(types.BaseVirtualDeviceFileBackingInfo).GetVirtualDeviceFileBackingInfo().FileName
		if p, err := vsphere.ParseDatastorePath(name); err == nil && p == s.disk.File {
			out = append(out, vd)
		}
	}
	return out
}

// datastoreFiles lists the datastore's files, to check nothing is created
// or deleted.
func (s *simDisk) datastoreFiles(t *testing.T) []string {
	t.Helper()
	var names []string
	err := filepath.WalkDir(s.dsDir, func(p string, _ os.DirEntry, err error) error {
		names = append(names, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestHotAdd(t *testing.T) {
	s := newSimDisk(t)
	before := s.datastoreFiles(t)
	var sawAttached int
	find := s.simFinder(t)
	tr := vsphere.NewHotAdd(proxyName, func(ctx context.Context, disk *types.VirtualDisk) (string, error) {
		sawAttached = len(s.attached(t))
		return find(ctx, disk)
	})
	if tr.Name() != source.TransportHotAdd {
		t.Fatalf("Name = %q", tr.Name())
	}
	d, err := tr.Open(context.Background(), s.env(), s.disk)
	if err != nil {
		t.Fatal(err)
	}
	if sawAttached != 1 || len(s.attached(t)) != 1 {
		t.Fatalf("attached while open: %d, %d; want 1", sawAttached, len(s.attached(t)))
	}
	if got := d.Describe(); got.Transport != source.TransportHotAdd || got.Location != s.disk.File.String() {
		t.Errorf("Describe = %+v", got)
	}
	s.checkContent(t, d)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.attached(t)); n != 0 {
		t.Fatalf("%d disks still attached after Close", n)
	}
	if after := s.datastoreFiles(t); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("datastore files changed:\n%v\n%v", before, after)
	}
	if err := d.Close(); err != nil { // a second Close is harmless
		t.Fatal(err)
	}
}

// Every way Open fails after attaching detaches the disk again.
func TestHotAddDetachesOnFailure(t *testing.T) {
	s := newSimDisk(t)
	small := filepath.Join(t.TempDir(), "small")
	if err := os.WriteFile(small, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		find      func(ctx context.Context, cancel context.CancelFunc) (string, error)
		wantInErr string
		want      error
	}{
		{name: "no device", find: func(context.Context, context.CancelFunc) (string, error) {
			return "", errors.New("no such device")
		}, wantInErr: "no such device"},
		{name: "wrong device", find: func(context.Context, context.CancelFunc) (string, error) {
			return small, nil
		}, wantInErr: "not the disk attached"},
		{name: "unreadable device", find: func(context.Context, context.CancelFunc) (string, error) {
			return t.TempDir(), nil
		}, wantInErr: "directory"},
		{name: "cancelled", find: func(ctx context.Context, cancel context.CancelFunc) (string, error) {
			cancel() // Ctrl-C while waiting for the device
			<-ctx.Done()
			return "", ctx.Err()
		}, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tr := vsphere.NewHotAdd(proxyName, func(ctx context.Context, _ *types.VirtualDisk) (string, error) {
				if n := len(s.attached(t)); n != 1 {
					t.Errorf("%d disks attached when looking for the device", n)
				}
				return tt.find(ctx, cancel)
			})
			d, err := tr.Open(ctx, s.env(), s.disk)
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded")
			}
			if (tt.want != nil && !errors.Is(err, tt.want)) || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("Open = %v, want %v containing %q", err, tt.want, tt.wantInErr)
			}
			if n := len(s.attached(t)); n != 0 {
				t.Fatalf("%d disks still attached after a failed Open", n)
			}
		})
	}
}

// A failed read and a cancelled context do not stop Close from detaching.
func TestHotAddCloseAfterFailedRead(t *testing.T) {
	s := newSimDisk(t)
	ctx, cancel := context.WithCancel(context.Background())
	d, err := vsphere.NewHotAdd(proxyName, s.simFinder(t)).Open(ctx, s.env(), s.disk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(make([]byte, 10), -1); err == nil {
		t.Fatal("read at a negative offset succeeded")
	}
	cancel()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.attached(t)); n != 0 {
		t.Fatalf("%d disks still attached after Close", n)
	}
}

// A disk a killed run left attached is detached by the next Open.
func TestHotAddLeftover(t *testing.T) {
	s := newSimDisk(t)
	ctx := context.Background()
	left := &types.VirtualDisk{VirtualDevice: types.VirtualDevice{Key: -1, ControllerKey: s.scsiController(t), UnitNumber: types.NewInt32(9),
		Backing: &types.VirtualDiskFlatVer2BackingInfo{
			VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: s.disk.File.String()},
			DiskMode:                     string(types.VirtualDiskModeIndependent_nonpersistent)}}}
	task, err := s.proxy(t).Reconfigure(ctx, types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: left}}})
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil || len(s.attached(t)) != 1 {
		t.Fatalf("leaving a disk attached: %v", err)
	}
	var log bytes.Buffer
	env := s.env()
	env.Logger = slog.New(slog.NewTextHandler(&log, nil))
	find := s.simFinder(t)
	d, err := vsphere.NewHotAdd(proxyName, func(ctx context.Context, disk *types.VirtualDisk) (string, error) {
		if got := s.attached(t); len(got) != 1 || *got[0].UnitNumber == 9 {
			t.Errorf("the leftover was not detached before attaching")
		}
		return find(ctx, disk)
	}).Open(ctx, env, s.disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(s.attached(t)); n != 0 {
		t.Fatalf("%d disks attached after Close", n)
	}
	if !strings.Contains(log.String(), "left attached") || !strings.Contains(log.String(), s.disk.File.String()) {
		t.Errorf("leftover not reported: %s", log.String())
	}
}

func (s *simDisk) scsiController(t *testing.T) int32 {
	t.Helper()
	devices, err := s.proxy(t).Device(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := devices.FindSCSIController("")
	if err != nil {
		t.Fatal(err)
	}
	return c.Key
}

func TestHotAddRefused(t *testing.T) {
	s := newSimDisk(t)
	otherDS := s.disk
	otherDS.File.Datastore = "OtherDS"
	tests := []struct {
		name, proxy string
		disk        vsphere.SnapshotDisk
		wantInErr   string
	}{
		{"no proxy VM", "", s.disk, "not a VM of the inventory"},
		{"proxy VM not found", "NoSuchVM", s.disk, `proxy VM "NoSuchVM" (--vsphere-vm) not found`},
		{"proxy is the VM", "DC0_H0_VM0", s.disk, "is the VM being backed up"},
		{"datastore not seen", proxyName, otherDS, "cannot see datastore OtherDS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := vsphere.NewHotAdd(tt.proxy, func(context.Context, *types.VirtualDisk) (string, error) {
				t.Error("the device finder was called")
				return "", errors.New("unreachable")
			})
			_, err := tr.Open(context.Background(), s.env(), tt.disk)
			if err == nil || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("Open = %v, want an error containing %q", err, tt.wantInErr)
			}
			if n := len(s.attached(t)); n != 0 {
				t.Fatalf("%d disks attached", n)
			}
		})
	}
}

// Two disks opened at once through one transport get their own units and
// are both detached.
func TestHotAddParallel(t *testing.T) {
	a := newSimDisk(t)
	b := simVMDisk(t, a.sim, a.client, "DC0_C0_RP0_VM0")
	if err := os.Truncate(b.flat, b.disk.Capacity); err != nil {
		t.Fatal(err)
	}
	tr := vsphere.NewHotAdd(proxyName, a.simFinder(t))
	disks := make([]source.Disk, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []*simDisk{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			disks[i], errs[i] = tr.Open(context.Background(), s.env(), s.disk)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	ua, ub := a.attached(t), b.attached(t)
	if len(ua) != 1 || len(ub) != 1 || (ua[0].ControllerKey == ub[0].ControllerKey && *ua[0].UnitNumber == *ub[0].UnitNumber) {
		t.Fatalf("attached: %d and %d disks, want one each on different units", len(ua), len(ub))
	}
	a.checkContent(t, disks[0])
	for _, d := range disks {
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.attached(t))+len(b.attached(t)) != 0 {
		t.Fatal("disks still attached after Close")
	}
}
