package vsphere_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/holdfast-backup/holdfast/internal/testutil/vcsim"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

const vmName = "DC0_H0_VM0"

// options names the test VM of sim.
func options(t *testing.T, sim *vcsim.Sim) vsphere.Options {
	t.Helper()
	loc, err := vsphere.ParseURL(sim.URL("/DC0/vm/" + vmName))
	if err != nil {
		t.Fatal(err)
	}
	return vsphere.Options{Locator: loc, Connect: sim.Options(), Tag: "t1", Connections: 2}
}

// startSim starts a simulator with CBT whose test VM's disk holds data.
func startSim(t *testing.T) (*vcsim.Sim, *vcsim.CBT) {
	t.Helper()
	sim := vcsim.Start(t, nil)
	sim.RequireSession(true) // as ESXi: the datastore reads must carry the session
	cbt := sim.CBT()
	cbt.PageSize = 1 << 30
	return sim, cbt
}

// pattern is n bytes of a recognisable pattern seeded by seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7/13)
	}
	return b
}

// snapshots lists the names of the VM's snapshots.
func snapshots(t *testing.T, sim *vcsim.Sim) []string {
	t.Helper()
	c := sim.Connect(t)
	vm, err := find.NewFinder(c.Client).VirtualMachine(context.Background(), "/DC0/vm/"+vmName)
	if err != nil {
		t.Fatal(err)
	}
	var mvm mo.VirtualMachine
	err = vm.Properties(context.Background(), vm.Reference(), []string{"snapshot"}, &mvm)
	var names []string
	var walk func([]types.VirtualMachineSnapshotTree)
	walk = func(l []types.VirtualMachineSnapshotTree) {
		for _, s := range l {
			names = append(names, s.Name)
			walk(s.ChildSnapshotList)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if mvm.Snapshot != nil {
		walk(mvm.Snapshot.RootSnapshotList)
	}
	return names
}

// releaseAtEnd releases the session when the test ends.
func releaseAtEnd(t *testing.T, s *vsphere.Session) {
	t.Cleanup(func() {
		if err := s.Release(context.Background(), false); err != nil {
			t.Error(err)
		}
	})
}

func readAll(t *testing.T, d source.Disk, off, n int64) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := d.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSessionReadsSnapshotWithCBT(t *testing.T) {
	sim, cbt := startSim(t)
	first := pattern(3<<20, 1)
	sim.WriteDisk(t, vmName, 0, 1<<30, first)
	ctx := context.Background()
	s, err := vsphere.Prepare(ctx, options(t, sim))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Disks) != 1 {
		t.Fatalf("%d disks", len(s.Disks))
	}
	d := s.Disks[0]
	if got := readAll(t, d, 1<<30, int64(len(first))); !bytes.Equal(got, first) {
		t.Error("the disk's bytes differ from the flat file's")
	}
	if info := d.Describe(); info.Transport != source.TransportNBD || info.Format != "vmdk-flat" || info.Location != "[LocalDS_0] "+vmName+"/disk1.vmdk" {
		t.Errorf("describe %+v", info)
	}
	alloc, err := d.Allocated(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []source.Extent{{Offset: 1 << 30, Length: 3 << 20}}; fmt.Sprint(alloc) != fmt.Sprint(want) {
		t.Errorf("allocated %v, want %v", alloc, want)
	}
	if cbt.Queries() < 10 {
		t.Errorf("%d queries for a 10 GiB disk in 1 GiB pages: the answer was not paged", cbt.Queries())
	}
	ct := d.(source.ChangeTracker)
	id1 := ct.ChangeID()
	if !strings.HasPrefix(id1, "52 ") || !strings.Contains(id1, "/") {
		t.Errorf("change ID %q", id1)
	}
	if s.Notes["cbt_enabled"] == "" || !strings.Contains(s.Notes["cbt_enabled"], "turned on") {
		t.Errorf("notes %v: enabling CBT not said", s.Notes)
	}
	if !strings.Contains(s.Notes["transport_choice"], "disk 0: direct: not configured; hotadd: not configured; nbd: used") || s.Notes["transport"] != "nbd" {
		t.Errorf("notes %v", s.Notes)
	}
	cfg := s.Config
	if cfg == nil || cfg.Platform != "vsphere" || cfg.Name != vmName || cfg.CPUs < 1 || cfg.MemoryMiB < 1 || cfg.Firmware == "" ||
		len(cfg.Disks) != 1 || cfg.Disks[0].Controller != "pvscsi 0" || cfg.Disks[0].CapacityBytes != 10<<30 || len(cfg.NICs) == 0 || cfg.NICs[0].Network == "" {
		t.Errorf("config %+v", cfg)
	}
	if got := snapshots(t, sim); len(got) != 1 || !strings.HasPrefix(got[0], "holdfast-t1-") {
		t.Errorf("snapshots while reading %v", got)
	}
	if err := s.Release(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := snapshots(t, sim); len(got) != 0 {
		t.Errorf("snapshots after release %v", got)
	}

	// Write 1 MiB at 2 GiB and 64 KiB over the first data: the next
	// session's changes since id1 are exactly these blocks.
	sim.WriteDisk(t, vmName, 0, 2<<30, pattern(1<<20, 9))
	sim.WriteDisk(t, vmName, 0, 1<<30+128<<10, pattern(64<<10, 5))
	s2, err := vsphere.Prepare(ctx, options(t, sim))
	if err != nil {
		t.Fatal(err)
	}
	releaseAtEnd(t, s2)
	if s2.Notes["cbt_enabled"] != "already on" {
		t.Errorf("cbt note %q", s2.Notes["cbt_enabled"])
	}
	ch, err := s2.Disks[0].(source.ChangeTracker).Changed(ctx, id1)
	if err != nil {
		t.Fatal(err)
	}
	want := []source.Extent{{Offset: 1<<30 + 128<<10, Length: 64 << 10}, {Offset: 2 << 30, Length: 1 << 20}}
	if !ch.Known || fmt.Sprint(ch.Extents) != fmt.Sprint(want) {
		t.Errorf("changed %+v, want %v", ch, want)
	}
	if id2 := s2.Disks[0].(source.ChangeTracker).ChangeID(); id2 == id1 || !strings.HasPrefix(id2, strings.Split(id1, "/")[0]) {
		t.Errorf("second change ID %q after %q", id2, id1)
	}
}

func TestChangedUnknownFallsBack(t *testing.T) {
	sim, cbt := startSim(t)
	sim.WriteDisk(t, vmName, 0, 0, pattern(1<<20, 3))
	ctx := context.Background()
	s, err := vsphere.Prepare(ctx, options(t, sim))
	if err != nil {
		t.Fatal(err)
	}
	id1 := s.Disks[0].(source.ChangeTracker).ChangeID()
	if err := s.Release(ctx, true); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func()
		prev  string
		want  string
	}{
		{name: "no previous", prev: "", want: "recorded no change ID"},
		{name: "forgotten", setup: cbt.Forget, prev: id1, want: "vSphere refused"},
		{name: "reset", setup: cbt.Reset, prev: id1, want: "another tracking instance"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup()
			}
			var log bytes.Buffer
			o := options(t, sim)
			o.PreviousChangeIDs = []string{tc.prev}
			o.Logger = slog.New(slog.NewTextHandler(&log, nil))
			s, err := vsphere.Prepare(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			releaseAtEnd(t, s)
			ch, err := s.Disks[0].(source.ChangeTracker).Changed(ctx, tc.prev)
			if err != nil {
				t.Fatalf("CBT trouble must not fail the backup: %v", err)
			}
			if ch.Known || !strings.Contains(ch.Reason, tc.want) {
				t.Errorf("changes %+v, want unknown with %q", ch, tc.want)
			}
			if logged := strings.Contains(log.String(), "another tracking instance"); logged != (tc.name == "reset") {
				t.Errorf("log %q", log.String())
			}
		})
	}
}

func TestLeftoverSnapshotCleaned(t *testing.T) {
	sim, _ := startSim(t)
	ctx := context.Background()
	c := sim.Connect(t)
	vm, err := find.NewFinder(c.Client).VirtualMachine(ctx, "/DC0/vm/"+vmName)
	if err != nil {
		t.Fatal(err)
	}
	sim.WriteDisk(t, vmName, 0, 0, pattern(4096, 1))
	for _, name := range []string{"holdfast-t1-20260101T000000Z", "holdfast-other-20260101T000000Z", "before-upgrade"} {
		task, err := vm.CreateSnapshot(ctx, name, "", false, false)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := vsphere.Prepare(ctx, options(t, sim))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Notes["cleaned_leftovers"]; got != "snapshot holdfast-t1-20260101T000000Z" {
		t.Errorf("cleaned_leftovers %q", got)
	}
	if err := s.Release(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(snapshots(t, sim), ","); got != "holdfast-other-20260101T000000Z,before-upgrade" {
		t.Errorf("snapshots left %q: only this repository's leftovers go", got)
	}
}

// failingTransport opens disks through NBD whose reads fail after the
// first, or on a cancelled context.
type failingTransport struct {
	vsphere.Transport
}

func (f failingTransport) Open(ctx context.Context, env *vsphere.Env, d vsphere.SnapshotDisk) (source.Disk, error) {
	disk, err := f.Transport.Open(ctx, env, d)
	if err != nil {
		return nil, err
	}
	return &failingDisk{Disk: disk}, nil
}

type failingDisk struct{ source.Disk }

var errInjected = errors.New("injected read failure")

func (d *failingDisk) ReadAt([]byte, int64) (int, error) { return 0, errInjected }

func TestSnapshotRemovedOnEveryExit(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T, sim *vcsim.Sim, o vsphere.Options)
	}{
		{name: "read failure", run: func(t *testing.T, sim *vcsim.Sim, o vsphere.Options) {
			o.Transports = []vsphere.Transport{failingTransport{vsphere.NewNBD(1)}}
			s, err := vsphere.Prepare(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Disks[0].ReadAt(make([]byte, 512), 0); !errors.Is(err, errInjected) {
				t.Fatalf("read: %v", err)
			}
			if err := s.Release(context.Background(), false); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "cancelled", run: func(t *testing.T, sim *vcsim.Sim, o vsphere.Options) {
			ctx, cancel := context.WithCancel(context.Background())
			s, err := vsphere.Prepare(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			if _, err := s.Disks[0].ReadAt(make([]byte, 1<<20), 0); !errors.Is(err, context.Canceled) {
				t.Errorf("read after cancel: %v", err)
			}
			if err := s.Release(ctx, false); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "cancelled while snapshotting", run: func(t *testing.T, sim *vcsim.Sim, o vsphere.Options) {
			ctx, cancel := context.WithCancel(context.Background())
			prepared := make(chan struct{})
			var closeOnce sync.Once
			done := func() { closeOnce.Do(func() { close(prepared) }) }
			t.Cleanup(done) // before the simulator stops: it waits for its calls
			var mu sync.Mutex
			asked, stopped := false, false
			cbt := sim.CBT()
			cbt.OnMethod = func(name string) {
				mu.Lock()
				stop := asked && name == "WaitForUpdatesEx" && !stopped
				asked = asked || name == "CreateSnapshot_Task"
				stopped = stopped || stop
				mu.Unlock()
				if stop { // the client waits for the snapshot task: Ctrl-C now
					cancel()
					<-prepared
				}
			}
			_, err := vsphere.Prepare(ctx, o)
			done()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("prepare: %v", err)
			}
		}},
		{name: "open failure", run: func(t *testing.T, sim *vcsim.Sim, o vsphere.Options) {
			o.Transport = source.TransportDirect // none given: fails after the snapshot
			if _, err := vsphere.Prepare(context.Background(), o); !errors.Is(err, vsphere.ErrNoTransport) {
				t.Fatalf("prepare: %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sim, _ := startSim(t)
			sim.WriteDisk(t, vmName, 0, 0, pattern(1<<20, 3))
			tc.run(t, sim, options(t, sim))
			if got := snapshots(t, sim); len(got) != 0 {
				t.Errorf("snapshots left: %v", got)
			}
		})
	}
}

func TestQuiesceFallback(t *testing.T) {
	sim, cbt := startSim(t)
	sim.WriteDisk(t, vmName, 0, 0, pattern(1<<20, 3))
	ctx := context.Background()
	o := options(t, sim)
	o.Quiesce = true
	for _, fail := range []bool{false, true} {
		cbt.FailQuiesce(fail)
		s, err := vsphere.Prepare(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		note := s.Notes["guest_quiesce"]
		if err := s.Release(ctx, true); err != nil {
			t.Fatal(err)
		}
		want := "quiesced through VMware Tools"
		if fail {
			want = "crash-consistent: the quiesced snapshot failed"
		}
		if !strings.HasPrefix(note, want) {
			t.Errorf("fail=%v: guest_quiesce %q, want %q", fail, note, want)
		}
	}
}

func TestIndependentDiskSkipped(t *testing.T) {
	sim, _ := startSim(t)
	ctx := context.Background()
	c := sim.Connect(t)
	vm, err := find.NewFinder(c.Client).VirtualMachine(ctx, "/DC0/vm/"+vmName)
	if err != nil {
		t.Fatal(err)
	}
	addDisk(t, vm, string(types.VirtualDiskModeIndependent_persistent))
	sim.WriteDisk(t, vmName, 0, 0, pattern(1<<20, 3))
	s, err := vsphere.Prepare(ctx, options(t, sim))
	if err != nil {
		t.Fatal(err)
	}
	releaseAtEnd(t, s)
	if len(s.Disks) != 1 || len(s.Warnings) != 1 || !strings.Contains(s.Warnings[0], "independent_persistent") {
		t.Errorf("%d disks, warnings %q", len(s.Disks), s.Warnings)
	}
	if len(s.Config.Skipped) != 1 {
		t.Errorf("config skipped %q", s.Config.Skipped)
	}

	// With every disk independent there is nothing to back up: an error,
	// and no snapshot left.
	for _, dev := range sim.VM(t, vmName).Config.Hardware.Device {
		if vd, ok := dev.(*types.VirtualDisk); ok {
			vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo).DiskMode = string(types.VirtualDiskModeIndependent_nonpersistent)
		}
	}
	o := options(t, sim)
	o.Tag = "t2"
	if _, err := vsphere.Prepare(ctx, o); !errors.Is(err, vsphere.ErrNoDisks) || !strings.Contains(err.Error(), "independent_nonpersistent") {
		t.Errorf("VM without a snapshot disk: %v", err)
	}
	if got := snapshots(t, sim); len(got) != 1 { // the first session's, released at the end
		t.Errorf("snapshots %v", got)
	}
}

// addDisk adds a 1 GiB disk in mode to vm's SCSI controller.
func addDisk(t *testing.T, vm *object.VirtualMachine, mode string) {
	t.Helper()
	ctx := context.Background()
	devs, err := vm.Device(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := devs.FindDiskController("scsi")
	if err != nil {
		t.Fatal(err)
	}
	disk := devs.CreateDisk(ctl, types.ManagedObjectReference{}, "[LocalDS_0] "+vmName+"/extra.vmdk")
	disk.CapacityInBytes = 1 << 30
	disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo).DiskMode = mode
	if err := vm.AddDevice(ctx, disk); err != nil {
		t.Fatal(err)
	}
}

func TestWrongPasswordAndVM(t *testing.T) {
	sim, _ := startSim(t)
	o := options(t, sim)
	o.Connect.Password = "hunter2"
	_, err := vsphere.Prepare(context.Background(), o)
	if !errors.Is(err, vsphere.ErrLogin) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("wrong password: %v", err)
	}
	o = options(t, sim)
	o.Locator.Path = "/DC0/vm/nope"
	if _, err := vsphere.Prepare(context.Background(), o); !errors.Is(err, vsphere.ErrVMNotFound) {
		t.Errorf("missing VM: %v", err)
	}
}
