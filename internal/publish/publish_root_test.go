package publish

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/guestimg"
)

var (
	bootFiles = map[string][]byte{"vmlinuz": bytes.Repeat([]byte("kernel "), 50000), "grub/grub.cfg": []byte("set default=0\n")}
	rootFiles = map[string][]byte{"etc/hostname": []byte("vm1\n"), "home/big.bin": bytes.Repeat([]byte{1, 2, 3, 250}, 700000)}
	dataFiles = map[string][]byte{"data/report.txt": []byte("quarterly figures\n")}
	optFiles  = map[string][]byte{"app/config.toml": []byte("[server]\nport = 8080\n")}
)

func TestPublishMountsEveryFilesystemReadOnly(t *testing.T) {
	needPublish(t)
	dir := t.TempDir()
	gpt, mbr := filepath.Join(dir, "gpt.img"), filepath.Join(dir, "mbr.img")
	vg := "hfpub" + NewID()[4:] // unique: other tests make volume groups too
	guestimg.Build(t, gpt, guestimg.Spec{Label: "gpt", Parts: []guestimg.Part{
		{FS: "ext4", SizeMiB: 16, Files: bootFiles}, {FS: "xfs", SizeMiB: 64, Files: rootFiles}, {FS: "swap", SizeMiB: 8},
		{FS: "btrfs", SizeMiB: 120, Files: optFiles}, {FS: "lvm", SizeMiB: 8, VG: vg}}})
	guestimg.Build(t, mbr, guestimg.Spec{Label: "dos", Parts: []guestimg.Part{{FS: "ext4", SizeMiB: 16, Files: dataFiles}}})
	r, m := backupImages(t, "vm1", gpt, mbr)

	s := publishT(t, r, m)
	if !ValidID(s.ID) || s.VM != "vm1" || s.Point != m.ID || len(s.Disks) != 2 {
		t.Fatalf("session: %+v", s)
	}
	want := []struct{ name, fstype, mp string }{
		{"disk0-p1", "ext4", "vm1/disk0-p1"}, {"disk0-p2", "xfs", "vm1/disk0-p2"}, {"disk0-p3", "swap", ""},
		{"disk0-p4", "btrfs", "vm1/disk0-p4"}, {"disk0-p5", "LVM2_member", ""}, {"disk1-p1", "ext4", "vm1/disk1-p1"},
	}
	// This kernel may lack device-mapper: then the volume group is named
	// in a problem (and there is no other problem).
	if (Host{}).DeviceMapper() {
		t.Log("device-mapper present: the volume group (without logical volumes) is activated")
	} else if len(s.Problems) != 1 || !strings.Contains(s.Problems[0], "volume group "+vg) || !strings.Contains(s.Problems[0], "no device-mapper") {
		t.Errorf("problems: %q", s.Problems)
	}
	if len(s.Filesystems) != len(want) {
		t.Fatalf("filesystems: %+v", s.Filesystems)
	}
	for i, w := range want {
		f := s.Filesystems[i]
		mp := ""
		if w.mp != "" {
			mp = filepath.Join(s.MountDir, w.mp)
		}
		if f.Name != w.name || f.FSType != w.fstype || f.Mountpoint != mp || !strings.HasPrefix(f.Device, "/dev/loop") {
			t.Errorf("filesystem %d: %+v, want %v", i, f, w)
		}
	}
	if st, err := os.Stat(s.MountDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("mount directory %s: %v %v, want mode 0700", s.MountDir, st, err)
	}
	sameFiles(t, s.Filesystems[0].Mountpoint, bootFiles)
	sameFiles(t, s.Filesystems[1].Mountpoint, rootFiles)
	sameFiles(t, s.Filesystems[3].Mountpoint, optFiles)
	sameFiles(t, s.Filesystems[5].Mountpoint, dataFiles)
	for _, f := range s.Filesystems {
		if f.Mountpoint == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(f.Mountpoint, "new"), []byte("x"), 0o644); !isEROFS(err) {
			t.Errorf("write into %s: %v, want EROFS", f.Mountpoint, err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.Filesystems[0].Mountpoint, "vmlinuz"), []byte("x"), 0o644); !isEROFS(err) {
		t.Errorf("overwrite: %v, want EROFS", err)
	}
	for _, d := range s.Disks {
		out, err := exec.Command("blockdev", "--getro", d.Loop).Output()
		if err != nil || strings.TrimSpace(string(out)) != "1" {
			t.Errorf("blockdev --getro %s: %q %v, want 1", d.Loop, out, err)
		}
		if _, err := os.OpenFile(d.File, os.O_RDWR, 0); !isEROFS(err) {
			t.Errorf("open %s for writing: %v, want EROFS", d.File, err)
		}
	}
	rec, err := s.recs.Load(s.ID)
	if err != nil || rec.State() != "published" || len(rec.Steps) == 0 {
		t.Fatalf("record: %+v %v", rec, err)
	}
	// The point is held (from forget and gc) while published.
	holds, err := r.Holds(context.Background())
	if err != nil || len(holds) != 1 || holds[0].Point != m.ID || holds[0].Holder != s.ID {
		t.Fatalf("holds while published: %+v %v", holds, err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s)
	if holds, err := r.Holds(context.Background()); err != nil || len(holds) != 0 {
		t.Errorf("holds after unpublish: %+v %v", holds, err)
	}
}

func TestPublishReportsDamageAndPublishesTheRest(t *testing.T) {
	needPublish(t)
	dir := t.TempDir()
	good, badTable, badFS := filepath.Join(dir, "good.img"), filepath.Join(dir, "badtable.img"), filepath.Join(dir, "badfs.img")
	guestimg.Build(t, good, guestimg.Spec{Label: "gpt", Parts: []guestimg.Part{{FS: "ext4", SizeMiB: 16, Files: dataFiles}}})
	guestimg.Build(t, badTable, guestimg.Spec{Label: "dos", Parts: []guestimg.Part{{FS: "ext4", SizeMiB: 16, Files: bootFiles}}})
	// An MBR whose partition runs past the end of the disk and a bad
	// signature-less second entry.
	corrupt(t, badTable, 446+8, []byte{0xff, 0xff, 0xff, 0x7f})
	guestimg.Build(t, badFS, guestimg.Spec{Label: "gpt", Parts: []guestimg.Part{{FS: "ext4", SizeMiB: 16, Files: rootFiles}}})
	// Zero the group descriptors (block 2 of 1 KiB blocks): blkid still
	// sees ext4, mount refuses.
	corrupt(t, badFS, 1<<20+2048, make([]byte, 1024))
	r, m := backupImages(t, "vm2", good, badTable, badFS)

	s := publishT(t, r, m)
	if len(s.Filesystems) == 0 || s.Filesystems[0].Mountpoint == "" {
		t.Fatalf("the good disk is not published: %+v", s.Filesystems)
	}
	sameFiles(t, s.Filesystems[0].Mountpoint, dataFiles)
	if len(s.Problems) < 2 {
		t.Errorf("problems: %q, want the damaged table and filesystem", s.Problems)
	}
	for _, f := range s.Filesystems[1:] {
		if f.Mountpoint != "" {
			t.Errorf("damaged %+v mounted", f)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s)
}

// corrupt overwrites bytes of an image.
func corrupt(t *testing.T, img string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// Two sessions of one point at once: the filesystems have the same UUIDs
// (xfs needs nouuid; btrfs mounts the second copy with a temporary fsid).
func TestPublishSamePointTwice(t *testing.T) {
	needPublish(t)
	img := filepath.Join(t.TempDir(), "d.img")
	guestimg.Build(t, img, guestimg.Spec{Label: "gpt", Parts: []guestimg.Part{
		{FS: "xfs", SizeMiB: 64, Files: rootFiles}, {FS: "btrfs", SizeMiB: 120, Files: optFiles}}})
	r, m := backupImages(t, "vm3", img)
	a, b := publishT(t, r, m), publishT(t, r, m)
	for _, s := range []*Session{a, b} {
		if len(s.Problems) != 0 || len(s.Filesystems) != 2 {
			t.Fatalf("session %s: %+v problems %q", s.ID, s.Filesystems, s.Problems)
		}
		sameFiles(t, s.Filesystems[0].Mountpoint, rootFiles)
		sameFiles(t, s.Filesystems[1].Mountpoint, optFiles)
	}
	for _, s := range []*Session{b, a} {
		if err := s.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		assertGone(t, s)
	}
}

// A disk without a partition table holding a filesystem (and an empty
// disk): the filesystem is mounted as diskN, the empty disk listed.
func TestPublishWholeDiskFilesystem(t *testing.T) {
	needPublish(t)
	dir := t.TempDir()
	whole, empty := filepath.Join(dir, "whole.img"), filepath.Join(dir, "empty.img")
	guestimg.Build(t, whole, guestimg.Spec{Parts: []guestimg.Part{{FS: "ext4", SizeMiB: 16, Files: dataFiles}}})
	guestimg.Build(t, empty, guestimg.Spec{Parts: []guestimg.Part{{SizeMiB: 4}}})
	r, m := backupImages(t, "vm4", whole, empty)
	s := publishT(t, r, m)
	if len(s.Filesystems) != 2 || len(s.Problems) != 0 {
		t.Fatalf("filesystems %+v, problems %q", s.Filesystems, s.Problems)
	}
	f := s.Filesystems[0]
	if f.Name != "disk0" || f.Partition != 0 || f.FSType != "ext4" || f.Mountpoint != filepath.Join(s.MountDir, "vm4", "disk0") {
		t.Errorf("whole-disk filesystem: %+v", f)
	}
	sameFiles(t, f.Mountpoint, dataFiles)
	if e := s.Filesystems[1]; e.Name != "disk1" || e.FSType != "" || e.Mountpoint != "" || e.Size != 4<<20 {
		t.Errorf("empty disk: %+v", e)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s)
}

// A mount directory reached through a symbolic link is recorded resolved,
// as /proc/self/mountinfo names it, so unpublish finds its mounts.
func TestPublishMountDirThroughALink(t *testing.T) {
	needPublish(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	guestimg.Build(t, img, guestimg.Spec{Label: "gpt", Parts: []guestimg.Part{{FS: "ext4", SizeMiB: 16, Files: dataFiles}}})
	r, m := backupImages(t, "vm5", img)
	target := filepath.Join(dir, "target")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	s, err := Publish(context.Background(), Options{Store: r, Point: m, StateDir: filepath.Join(dir, "state"),
		MountDir: filepath.Join(dir, "link", "mnt")})
	if err != nil {
		t.Fatal(err)
	}
	if s.MountDir != filepath.Join(target, "mnt") {
		t.Errorf("mount dir %s, want it resolved", s.MountDir)
	}
	if len(s.Problems) != 0 || len(s.Filesystems) != 1 || s.Filesystems[0].Mountpoint == "" {
		t.Fatalf("filesystems %+v, problems %q", s.Filesystems, s.Problems)
	}
	sameFiles(t, s.Filesystems[0].Mountpoint, dataFiles)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s)
}

// Partition devices that partx added outlive their loop device's detach:
// another user of loop devices that detaches without removing them
// leaves them for the next one to get that loop device. Publish must not
// take them for its disk's (they have another table's offsets), nor fail
// to add its own.
func TestPublishOnALoopDeviceWithStalePartitions(t *testing.T) {
	needPublish(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "d.img")
	guestimg.Build(t, img, guestimg.Spec{Label: "gpt", Parts: []guestimg.Part{{FS: "ext4", SizeMiB: 16, Files: dataFiles}}})
	r, m := backupImages(t, "vm6", img)
	// Another table (two partitions, other offsets) on a loop device,
	// detached with its partition devices left.
	other := filepath.Join(dir, "other.img")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(other, 24<<20); err != nil {
		t.Fatal(err)
	}
	sf := exec.Command("sfdisk", "-q", other)
	sf.Stdin = strings.NewReader("label: gpt\nstart=4096, size=2048\nstart=8192, size=4096\n")
	if out, err := sf.CombinedOutput(); err != nil {
		t.Skipf("sfdisk: %v %s", err, out)
	}
	out, err := exec.Command("losetup", "-r", "--find", "--show", other).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	stale := strings.TrimSpace(string(out))
	t.Cleanup(func() { // the stale partitions, unless the device serves someone now
		if back, _ := (Host{}).LoopBacking(stale); back == "" {
			_ = exec.Command("partx", "-d", stale).Run()
		}
	})
	if out, err := exec.Command("partx", "-a", stale).CombinedOutput(); err != nil {
		_ = exec.Command("losetup", "-d", stale).Run()
		t.Fatalf("partx -a: %v %s", err, out)
	}
	if out, err := exec.Command("losetup", "-d", stale).CombinedOutput(); err != nil {
		t.Fatalf("losetup -d: %v %s", err, out)
	}
	if _, err := os.Stat(stale + "p1"); err != nil {
		t.Skipf("this kernel removed the partitions at detach (%v): nothing stale to test with", err)
	}
	s := publishT(t, r, m)
	if s.Disks[0].Loop != stale {
		t.Skipf("publish got %s, not %s with the stale partitions (another test took it)", s.Disks[0].Loop, stale)
	}
	if len(s.Problems) != 0 || len(s.Filesystems) != 1 || s.Filesystems[0].Mountpoint == "" {
		t.Fatalf("filesystems %+v, problems %q", s.Filesystems, s.Problems)
	}
	sameFiles(t, s.Filesystems[0].Mountpoint, dataFiles)
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s)
}
