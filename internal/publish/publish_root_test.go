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
)

func TestPublishMountsEveryFilesystemReadOnly(t *testing.T) {
	needPublish(t)
	dir := t.TempDir()
	gpt, mbr := filepath.Join(dir, "gpt.img"), filepath.Join(dir, "mbr.img")
	guestimg.Build(t, gpt, guestimg.Spec{Label: "gpt", Parts: []guestimg.Part{
		{FS: "ext4", SizeMiB: 16, Files: bootFiles}, {FS: "xfs", SizeMiB: 64, Files: rootFiles}, {FS: "swap", SizeMiB: 8}}})
	guestimg.Build(t, mbr, guestimg.Spec{Label: "dos", Parts: []guestimg.Part{{FS: "ext4", SizeMiB: 16, Files: dataFiles}}})
	r, m := backupImages(t, "vm1", gpt, mbr)

	s := publishT(t, r, m)
	if !ValidID(s.ID) || s.VM != "vm1" || s.Point != m.ID || len(s.Disks) != 2 || len(s.Problems) != 0 {
		t.Fatalf("session: %+v", s)
	}
	want := []struct{ name, fstype, mp string }{
		{"disk0-p1", "ext4", "vm1/disk0-p1"}, {"disk0-p2", "xfs", "vm1/disk0-p2"}, {"disk0-p3", "swap", ""}, {"disk1-p1", "ext4", "vm1/disk1-p1"},
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
	sameFiles(t, s.Filesystems[0].Mountpoint, bootFiles)
	sameFiles(t, s.Filesystems[1].Mountpoint, rootFiles)
	sameFiles(t, s.Filesystems[3].Mountpoint, dataFiles)
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
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	assertGone(t, s)
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
