// Package guestimg builds disk images with real partition tables and
// filesystems for tests, without root or loop devices: sfdisk writes the
// table, mkfs.ext4 -d and mkfs.xfs -p fill a filesystem from a directory,
// straight into the image (ext4, at an offset) or into a file copied into
// it (xfs, swap).
package guestimg

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Part is a partition (or, with Spec.Label "", the whole disk).
type Part struct {
	FS      string            // "ext4", "ext2", "xfs", "btrfs", "swap", "lvm" (a PV of volume group VG), "" (left empty)
	SizeMiB int64             // at least 16 for ext4, 64 for xfs, 114 for btrfs
	VG      string            // "lvm": the volume group (needs root and a loop device: use a unique name)
	Files   map[string][]byte // relative path → content (directories made as needed)
}

// Spec is a disk image.
type Spec struct {
	Label string // "gpt", "dos", or "" for a filesystem on the whole disk (one Part)
	Parts []Part
}

// Need skips the test unless the tools are installed.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range append([]string{"sfdisk", "mkfs.ext4"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

// Build writes the image to path and returns each partition's offset.
// Partitions start at 1 MiB and follow each other.
func Build(t testing.TB, path string, s Spec) []int64 {
	t.Helper()
	var offs []int64
	off, size := int64(0), int64(0)
	if s.Label != "" {
		off = 1 << 20
	}
	var table strings.Builder
	fmt.Fprintf(&table, "label: %s\n", s.Label)
	for _, p := range s.Parts {
		offs = append(offs, off)
		typ := "linux"
		if s.Label == "dos" {
			typ = "83"
		}
		fmt.Fprintf(&table, "start=%d, size=%d, type=%s\n", off/512, p.SizeMiB<<20/512, typ)
		off += p.SizeMiB << 20
	}
	size = off
	if s.Label != "" {
		size += 1 << 20 // room for the backup GPT
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
	if s.Label != "" {
		run(t, strings.NewReader(table.String()), nil, "sfdisk", "-q", path)
	}
	for i, p := range s.Parts {
		writeFS(t, path, offs[i], p)
	}
	return offs
}

func writeFS(t testing.TB, img string, off int64, p Part) {
	t.Helper()
	src := t.TempDir()
	for name, data := range p.Files {
		f := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	switch p.FS {
	case "":
	case "ext4", "ext2":
		run(t, nil, nil, "mkfs."+p.FS, "-q", "-F", "-d", src, "-E", fmt.Sprintf("offset=%d", off), img, fmt.Sprintf("%dM", p.SizeMiB))
	case "xfs", "swap", "btrfs", "lvm":
		part := filepath.Join(t.TempDir(), "part.img")
		if err := os.WriteFile(part, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(part, p.SizeMiB<<20); err != nil {
			t.Fatal(err)
		}
		switch p.FS {
		case "swap":
			run(t, nil, nil, "mkswap", "-q", part)
		case "btrfs":
			run(t, nil, nil, "mkfs.btrfs", "-q", "-f", "-r", src, part)
		case "lvm":
			makeVG(t, part, p.VG)
		default:
			proto := filepath.Join(t.TempDir(), "proto")
			if err := os.WriteFile(proto, []byte(xfsProto(src, p.Files)), 0o600); err != nil {
				t.Fatal(err)
			}
			// The variables let mkfs.xfs make a filesystem smaller than 300 MB, as xfstests do.
			run(t, nil, []string{"TEST_DIR=1", "TEST_DEV=1", "QA_CHECK_FS=1"}, "mkfs.xfs", "-q", "-f", "-p", proto, part)
		}
		st, err := os.Stat(part)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != p.SizeMiB<<20 {
			t.Fatalf("guestimg: mkfs made a %s of %d bytes, not %d MiB: give a larger size", p.FS, st.Size(), p.SizeMiB)
		}
		CopyInto(t, img, part, off)
	default:
		t.Fatalf("guestimg: unknown filesystem %q", p.FS)
	}
}

// makeVG makes file a physical volume of a new volume group vg, on a
// loop device of its own (LVM restricted to it), detached after.
func makeVG(t testing.TB, file, vg string) {
	t.Helper()
	if vg == "" {
		t.Fatal("guestimg: an lvm part needs a VG name")
	}
	out, err := exec.Command("losetup", "--find", "--show", file).Output()
	if err != nil {
		t.Fatalf("losetup %s: %v", file, err)
	}
	loop := strings.TrimSpace(string(out))
	defer func() {
		if out, err := exec.Command("losetup", "-d", loop).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v %s", loop, err, out)
		}
	}()
	env := []string{"LVM_SUPPRESS_FD_WARNINGS=1"}
	noBackup := "backup { backup = 0 archive = 0 }" // nothing of the test in /etc/lvm
	run(t, nil, env, "pvcreate", "-q", "--devices", loop, "--config", noBackup, loop)
	run(t, nil, env, "vgcreate", "-q", "--devices", loop, "--config", noBackup, vg, loop)
}

// xfsProto is an mkfs.xfs prototype file for files in src (flat names or
// one level of directories).
func xfsProto(src string, files map[string][]byte) string {
	var b strings.Builder
	b.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	byDir := map[string][]string{}
	for name := range files {
		dir, base := filepath.Split(name)
		byDir[strings.TrimSuffix(dir, "/")] = append(byDir[strings.TrimSuffix(dir, "/")], base)
	}
	dirs := make([]string, 0, len(byDir))
	for d := range byDir {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		names := byDir[d]
		sort.Strings(names)
		if d != "" {
			fmt.Fprintf(&b, "%s d--755 0 0\n", d)
		}
		for _, n := range names {
			fmt.Fprintf(&b, "%s ---644 0 0 %s\n", n, filepath.Join(src, d, n))
		}
		if d != "" {
			b.WriteString("$\n")
		}
	}
	b.WriteString("$\n")
	return b.String()
}

// CopyInto writes the file src into img at off.
func CopyInto(t testing.TB, img, src string, off int64) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	CopyBytes(t, img, data, off)
}

// CopyBytes writes data into img at off.
func CopyBytes(t testing.TB, img string, data []byte, off int64) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

func run(t testing.TB, stdin *strings.Reader, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// NeedPublishHost skips the test unless this host can publish a point:
// root, /dev/fuse and the tools publish and these images use.
func NeedPublishHost(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for FUSE, loop devices and mounts")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse")
	}
	Need(t, "losetup", "partx", "blkid", "mount", "umount", "blockdev", "mkfs.xfs", "mkswap")
}
