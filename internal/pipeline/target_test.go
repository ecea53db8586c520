package pipeline

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestTargetFormat(t *testing.T) {
	for _, tc := range []struct{ path, format, want string }{
		{"/a/disk.img", "", "raw"},
		{"/a/disk.qcow2", "", "qcow2"},
		{"/a/DISK.QCOW2", "", "qcow2"},
		{"/a/disk.qcow2", "raw", "raw"},
		{"/a/disk.img", "qcow2", "qcow2"},
	} {
		if got, err := TargetFormat(tc.path, tc.format); err != nil || got != tc.want {
			t.Errorf("TargetFormat(%q, %q) = %q, %v; want %q", tc.path, tc.format, got, err, tc.want)
		}
	}
	if _, err := TargetFormat("/a/x", "vmdk"); !errors.Is(err, ErrTargetFormat) {
		t.Errorf("vmdk: %v", err)
	}
}

// TestOpenTargetConfined: a confined target must lie beneath a restore
// root, reached without any symbolic link; nothing outside is touched.
func TestOpenTargetConfined(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "restores")
	outside := filepath.Join(base, "elsewhere")
	for _, d := range []string{root, outside, filepath.Join(root, "sub")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	victim := filepath.Join(outside, "authorized_keys")
	keep := []byte("ssh-ed25519 AAAA... admin\n")
	if err := os.WriteFile(victim, keep, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(root, "keys.img")); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(root, "existing.img")
	if err := os.WriteFile(existing, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	confine := &Confinement{Roots: []string{root}}
	tests := []struct {
		name    string
		path    string
		confine *Confinement
		force   bool
		want    error // nil: opens
	}{
		{"beneath the root", filepath.Join(root, "sub", "new.img"), confine, false, nil},
		{"outside the root", victim, confine, true, ErrTargetRefused},
		{"dot-dot out of the root", root + "/../elsewhere/authorized_keys", confine, true, ErrTargetRefused},
		{"the root itself", root, confine, true, ErrTargetRefused},
		{"through a symlinked directory", filepath.Join(root, "link", "authorized_keys"), confine, true, ErrTargetRefused},
		{"a symlink as the target", filepath.Join(root, "keys.img"), confine, true, ErrTargetRefused},
		{"relative path", "restores/x.img", confine, true, ErrTargetRefused},
		{"no restore roots", filepath.Join(root, "x.img"), &Confinement{}, true, ErrTargetRefused},
		{"existing file", existing, confine, false, ErrTargetExists},
		{"existing file, force", existing, confine, true, nil},
		{"a directory", filepath.Join(root, "sub"), confine, true, ErrTargetRefused},
		{"a device not allowed", "/dev/null", &Confinement{Roots: []string{"/dev"}}, true, ErrTargetRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := OpenTarget(context.Background(), tc.path, 4096, TargetOptions{Force: tc.force, Confine: tc.confine})
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("OpenTarget: %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tg.W.WriteAt([]byte("restored"), 0); err != nil {
				t.Fatal(err)
			}
			if err := tg.Close(); err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(tc.path); err != nil || !bytes.HasPrefix(b, []byte("restored")) || len(b) != 4096 {
				t.Fatalf("target after restore: %d bytes, %v", len(b), err)
			}
		})
	}
	if b, err := os.ReadFile(victim); err != nil || !bytes.Equal(b, keep) {
		t.Fatalf("the file outside the root changed (%v)", err)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 1 {
		t.Errorf("files appeared outside the root: %v", ents)
	}
}

// TestOpenTargetAbortKeepsFile: an aborted restore over an existing file
// leaves it as it was and removes the temporary file.
func TestOpenTargetAbortKeepsFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	tg, err := OpenTarget(context.Background(), p, 1<<20, TargetOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.W.WriteAt([]byte("partial"), 0); err != nil {
		t.Fatal(err)
	}
	tg.Abort()
	if b, err := os.ReadFile(p); err != nil || string(b) != "old" {
		t.Fatalf("after abort: %q, %v", b, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("abort left files: %v", ents)
	}
}

// TestOpenTargetLocked: a file another open file description holds an OFD
// lock on (as QEMU does) is refused even with Force.
func TestOpenTargetLocked(t *testing.T) {
	p := filepath.Join(t.TempDir(), "vm.img")
	if err := os.WriteFile(p, []byte("running VM"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_RDLCK, Start: 100, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	_, err = OpenTarget(context.Background(), p, 4096, TargetOptions{Force: true})
	if !errors.Is(err, ErrImageInUse) || !strings.Contains(err.Error(), p) {
		t.Fatalf("locked file: %v, want ErrImageInUse", err)
	}
}

// TestOpenTargetConfinedQcow2: beneath a restore root, qemu-img and
// qemu-nbd reach the temporary image through the directory handle; the
// result is renamed into place.
func TestOpenTargetConfinedQcow2(t *testing.T) {
	needQemu(t)
	r, want, ix := qcowDisk(t)
	root := t.TempDir()
	img := filepath.Join(root, "vm:1.qcow2") // a colon: no protocol prefix for qemu
	ctx := context.Background()
	tg, err := OpenTarget(ctx, img, ix.DiskSize, TargetOptions{Confine: &Confinement{Roots: []string{root}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreDisk(ctx, streamDisk(t, r, ix), tg.RestoreTarget, Options{Workers: 2}); err != nil {
		tg.Abort()
		t.Fatal(err)
	}
	if err := tg.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(qcowContent(t, img), want) {
		t.Fatal("restored qcow2 differs from the disk")
	}
	if ents, _ := os.ReadDir(root); len(ents) != 1 {
		t.Fatalf("files beside the image: %v", ents)
	}
}
