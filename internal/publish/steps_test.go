package publish

import (
	"context"
	"errors"
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/clock"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gptWithLVM scripts a disk with a GPT: ext4, xfs and an LVM PV holding
// vg0/root (ext4).
func gptWithLVM(f *fakeSys) {
	f.answers["blkid -p -o export /dev/loop7"] = "PTTYPE=gpt\n"
	f.answers["partx -g -r -o NR,SECTORS /dev/loop7"] = "1 2048\n2 4096\n3 8192\n"
	f.answers["blkid -p -o export /dev/loop7p1"] = "UUID=1\nTYPE=ext4\n"
	f.answers["blkid -p -o export /dev/loop7p2"] = "TYPE=xfs\n"
	f.answers["blkid -p -o export /dev/loop7p3"] = "TYPE=LVM2_member\n"
	f.answers["pvs "+strings.Join(lvmArgs([]string{"/dev/loop7p3"}, "--noheadings", "-o", "pv_name,vg_name"), " ")] = "  /dev/loop7p3 vg0\n"
	f.answers["dmsetup info -c --noheadings -o name"] = "No devices found\n"
	f.answers["lvs "+strings.Join(lvmArgs([]string{"/dev/loop7p3"}, "--noheadings", "--units", "b", "--nosuffix", "-o", "lv_name,lv_size", "vg0"), " ")] = "  root 1048576\n  swap 4096\n"
	f.answers["blkid -p -o export /dev/mapper/vg0-root"] = "TYPE=ext4\n"
	f.answers["blkid -p -o export /dev/mapper/vg0-swap"] = "TYPE=swap\n"
}

func TestAttachAndUndoInReverse(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	gptWithLVM(f)
	s := fakeSession(t, f, 8<<20)
	if err := s.attach(ctx); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(s.MountDir, "vm1")
	want := []Filesystem{
		{Name: "disk0-p1", Partition: 1, Device: "/dev/loop7p1", FSType: "ext4", Size: 1 << 20, Mountpoint: base + "/disk0-p1"},
		{Name: "disk0-p2", Partition: 2, Device: "/dev/loop7p2", FSType: "xfs", Size: 2 << 20, Mountpoint: base + "/disk0-p2"},
		{Name: "disk0-p3", Partition: 3, Device: "/dev/loop7p3", FSType: "LVM2_member", Size: 4 << 20},
		{Name: "root", LV: "vg0/root", Device: "/dev/mapper/vg0-root", FSType: "ext4", Size: 1 << 20, Mountpoint: base + "/root"},
		{Name: "swap", LV: "vg0/swap", Device: "/dev/mapper/vg0-swap", FSType: "swap", Size: 4096},
	}
	if !slices.Equal(s.Filesystems, want) || len(s.Problems) != 0 {
		t.Fatalf("filesystems:\n%+v\nwant\n%+v\nproblems %q", s.Filesystems, want, s.Problems)
	}
	mounts := f.ran("mount")
	wantMounts := []string{
		"mount -t ext4 -o ro,nodev,nosuid,noexec,noload /dev/loop7p1 " + base + "/disk0-p1",
		"mount -t xfs -o ro,nodev,nosuid,noexec,norecovery,nouuid /dev/loop7p2 " + base + "/disk0-p2",
		"mount -t ext4 -o ro,nodev,nosuid,noexec,noload /dev/mapper/vg0-root " + base + "/root",
	}
	if !slices.Equal(mounts, wantMounts) {
		t.Errorf("mounts:\n%s", strings.Join(mounts, "\n"))
	}
	if got := f.ran("vgchange"); len(got) != 1 || !strings.Contains(got[0], `read_only_volume_list = [ "vg0" ]`) ||
		!strings.Contains(got[0], "--devices /dev/loop7p3") || !strings.HasSuffix(got[0], "-ay vg0") {
		t.Errorf("vgchange: %q", got)
	}
	rec, err := s.recs.Load(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range rec.Steps {
		if !st.Done {
			t.Errorf("step %s recorded as not done", st)
		}
	}
	f.calls = nil
	if _, err := s.undo(ctx); err != nil {
		t.Fatal(err)
	}
	wantUndo := []string{
		"umount " + base + "/root", "umount " + base + "/disk0-p2", "umount " + base + "/disk0-p1",
		"vgchange " + strings.Join(lvmArgs([]string{"/dev/loop7p3"}, "-an", "vg0"), " "),
		"partx -d /dev/loop7", "losetup -d /dev/loop7",
	}
	if got := f.ran("umount", "vgchange", "partx", "losetup"); !slices.Equal(got, wantUndo) {
		t.Errorf("undo:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantUndo, "\n"))
	}
	if _, err := os.Stat(s.MountDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount directory left: %v", err)
	}
	if rec, _ := s.recs.Load(s.ID); len(rec.Steps) != 0 {
		t.Errorf("steps left in the record: %+v", rec.Steps)
	}
}

func TestProblemsDoNotStopPublish(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		script  func(f *fakeSys)
		problem string
		mounted int
	}{
		{"mount fails", func(f *fakeSys) {
			gptWithLVM(f)
			f.answers["mount -t xfs -o ro,nodev,nosuid,noexec,norecovery,nouuid /dev/loop7p2 MNT/vm1/disk0-p2"] = "!32 wrong fs type, bad superblock"
		}, "bad superblock", 2},
		{"volume group name in use", func(f *fakeSys) {
			gptWithLVM(f)
			f.answers["dmsetup info -c --noheadings -o name"] = "vg0-home\nother-root\n"
		}, "vg0 skipped", 2},
		{"no device-mapper", func(f *fakeSys) { gptWithLVM(f); f.dm = false }, "volume group vg0 (on /dev/loop7p3) not activated: this kernel has no device-mapper", 2},
		{"vgchange fails", func(f *fakeSys) {
			gptWithLVM(f)
			f.answers["vgchange "+strings.Join([]string{"--devices", "/dev/loop7p3", "--config",
				lvmConfig + ` activation { read_only_volume_list = [ "vg0" ] }`, "-ay", "vg0"}, " ")] = "!5 metadata damaged"
		}, "metadata damaged", 2},
		{"damaged partition table", func(f *fakeSys) {
			f.answers["blkid -p -o export /dev/loop7"] = "PTTYPE=dos\n"
			f.answers["partx -g -r -o NR,SECTORS /dev/loop7"] = "1 2048\n"
			f.answers["partx -a /dev/loop7"] = "!1 partx: /dev/loop7: error adding partition 1"
		}, "error adding partition", 0},
		{"nothing recognised", func(*fakeSys) {}, "", 0},
		{"a partition device missing", func(f *fakeSys) {
			gptWithLVM(f)
			f.devnums["/dev/loop7p2"] = ""
		}, "disk0-p2: stat /dev/loop7p2: file does not exist", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			s := fakeSession(t, f, 8<<20)
			tc.script(f)
			for k, v := range f.answers { // MNT stands for the mount directory
				delete(f.answers, k)
				f.answers[strings.ReplaceAll(k, "MNT", s.MountDir)] = v
			}
			if err := s.attach(ctx); err != nil {
				t.Fatal(err)
			}
			joined := strings.Join(s.Problems, "\n")
			if tc.problem == "" && len(s.Problems) != 0 || !strings.Contains(joined, tc.problem) {
				t.Errorf("problems %q, want %q", s.Problems, tc.problem)
			}
			n := 0
			for _, fs := range s.Filesystems {
				if fs.Mountpoint != "" {
					n++
				}
			}
			if n != tc.mounted {
				t.Errorf("%d mounted, want %d: %+v", n, tc.mounted, s.Filesystems)
			}
			if _, err := s.undo(ctx); err != nil {
				t.Fatal(err)
			}
			if len(f.loops) != 0 || len(f.mounted) != 0 {
				t.Errorf("left: loops %v mounts %v", f.loops, f.mounted)
			}
		})
	}
}

func TestFailedStepIsUndone(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	s := fakeSession(t, f, 1<<20, 1<<20)
	f.answers["losetup -r --find --show "+s.Disks[1].File] = "!1 losetup: cannot find an unused loop device"
	err := s.attach(ctx)
	if err == nil || !strings.Contains(err.Error(), "unused loop device") {
		t.Fatalf("attach: %v", err)
	}
	if _, err := s.undo(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.loops) != 0 {
		t.Errorf("loop devices left: %v", f.loops)
	}
}

func TestUndoStopsAtABusyMount(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	gptWithLVM(f)
	s := fakeSession(t, f, 8<<20)
	if err := s.attach(ctx); err != nil {
		t.Fatal(err)
	}
	busy := s.Filesystems[0].Mountpoint
	f.answers["umount "+busy] = "!32 umount: target is busy"
	if _, err := s.undo(ctx); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("undo: %v", err)
	}
	if len(f.loops) != 1 || !f.mounted[busy] {
		t.Errorf("undo went past the busy mount: loops %v mounts %v", f.loops, f.mounted)
	}
	rec, err := s.recs.Load(s.ID)
	if err != nil || rec.Steps[len(rec.Steps)-1].Path != busy {
		t.Fatalf("record: %+v %v", rec, err)
	}
	delete(f.answers, "umount "+busy)
	if _, err := s.undo(ctx); err != nil {
		t.Fatal(err)
	}
}

// The loop device Publish gets may have partition devices a previous
// user left (partx -a's outlive a detach): they are removed first, so
// that the disk's own are added.
func TestStalePartitionDevicesAreReplaced(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	gptWithLVM(f)
	f.parts["/dev/loop7"] = true
	s := fakeSession(t, f, 8<<20)
	if err := s.attach(ctx); err != nil {
		t.Fatal(err)
	}
	if len(s.Problems) != 0 || s.Filesystems[0].Mountpoint == "" {
		t.Errorf("problems %q, filesystems %+v", s.Problems, s.Filesystems)
	}
	if got := f.ran("partx"); !slices.Contains(got, "partx -d /dev/loop7") || !slices.Contains(got, "partx -a /dev/loop7") {
		t.Errorf("partx: %q", got)
	}
	if _, err := s.undo(ctx); err != nil {
		t.Fatal(err)
	}
	if f.parts["/dev/loop7"] {
		t.Error("partition devices left")
	}
}

// A scanner (udev's blkid, an LVM command scanning every block device)
// holds a device open for a moment: undoing partitions and loop devices
// tries again while the device is busy, within a bound.
func TestUndoWaitsOutABusyDevice(t *testing.T) {
	tests := []struct {
		name      string
		busyPartx int
		busyLoop  int
		wantErr   bool
	}{
		{"busy for a moment", 2, 3, false},
		{"busy for good", busyTries + 5, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFake()
			gptWithLVM(f)
			s := fakeSession(t, f, 8<<20)
			clk := clock.NewFake(time.Unix(0, 0))
			s.clk = clk
			if err := s.attach(ctx); err != nil {
				t.Fatal(err)
			}
			f.busy["partx -d /dev/loop7"] = tt.busyPartx
			f.busy["losetup -d /dev/loop7"] = tt.busyLoop
			_, err := s.undo(ctx)
			if (err != nil) != tt.wantErr {
				t.Fatalf("undo: %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				if len(f.loops) != 1 {
					t.Errorf("undo went past the busy device: loops %v", f.loops)
				}
				if waited := clk.Since(time.Unix(0, 0)); waited != (busyTries-1)*busyWait {
					t.Errorf("waited %v, want %v", waited, (busyTries-1)*busyWait)
				}
				return
			}
			if len(f.loops) != 0 || f.parts["/dev/loop7"] {
				t.Errorf("left loops %v partitions %v", f.loops, f.parts)
			}
		})
	}
}

func TestDeviceBusy(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"partx busy", &ExitError{Command: "partx -d /dev/loop7", Code: 1, Stderr: "partx: /dev/loop7: error deleting partition 1: Device or resource busy"}, true},
		{"partx other", &ExitError{Command: "partx -d /dev/loop7", Code: 1, Stderr: "partx: bad usage"}, false},
		{"fusermount busy", fmt.Errorf("/usr/bin/fusermount3: failed to unmount /x: Device or resource busy\n (code exit status 1)"), true},
		{"EBUSY", fmt.Errorf("unmount: %w", syscall.EBUSY), true},
		{"other", errors.New("permission denied"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := deviceBusy(tt.err); got != tt.want {
				t.Errorf("deviceBusy(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
