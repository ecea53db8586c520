package guesttree

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// XFSSizeMiB is the smallest xfs mkfs.xfs makes.
const XFSSizeMiB = 300

// XFSProto makes an xfs image of src without root: mkfs.xfs -p with a
// proto file. A proto file has no hard links (each name is a copy), no
// times (all are now), no sticky bit, no holes; owners and modes are kept.
// Build src with NoSparse. The image is 1 GiB (sparse).
func XFSProto(t testing.TB, src string, mkfsOpts ...string) string {
	t.Helper()
	dir := t.TempDir()
	proto := ProtoFile(t, src)
	img := filepath.Join(dir, "xfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 1<<30); err != nil {
		t.Fatal(err)
	}
	Run(t, nil, "mkfs.xfs", append(append([]string{"-q", "-p", proto}, mkfsOpts...), img)...)
	return img
}

// ProtoFile writes a mkfs.xfs proto file describing src and returns its path.
func ProtoFile(t testing.TB, src string) string {
	t.Helper()
	proto := filepath.Join(t.TempDir(), "proto")
	var b strings.Builder
	b.WriteString("boot\n0 0\nd--755 0 0\n")
	protoDir(t, &b, src)
	b.WriteString("$\n")
	if err := os.WriteFile(proto, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return proto
}

func protoDir(t testing.TB, b *strings.Builder, dir string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		suid, sgid := "-", "-"
		if fi.Mode()&os.ModeSetuid != 0 {
			suid = "u"
		}
		if fi.Mode()&os.ModeSetgid != 0 {
			sgid = "g"
		}
		perm := fmt.Sprintf("%03o", fi.Mode().Perm())
		switch {
		case fi.IsDir():
			fmt.Fprintf(b, "%s d%s%s%s %d %d\n", e.Name(), suid, sgid, perm, st.Uid, st.Gid)
			protoDir(t, b, p)
			b.WriteString("$\n")
		case fi.Mode()&os.ModeNamedPipe != 0:
			fmt.Fprintf(b, "%s p%s%s%s %d %d\n", e.Name(), suid, sgid, perm, st.Uid, st.Gid)
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(b, "%s l%s%s%s %d %d %s\n", e.Name(), suid, sgid, perm, st.Uid, st.Gid, target)
		default:
			fmt.Fprintf(b, "%s -%s%s%s %d %d %s\n", e.Name(), suid, sgid, perm, st.Uid, st.Gid, p)
		}
	}
}

// XFSMounted makes an xfs image of src keeping everything (hard links,
// times, sparse files): mkfs.xfs, then a loop mount of its own and cp -a.
// It needs root and a loop device, and skips without them.
func XFSMounted(t testing.TB, src string, mkfsOpts ...string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("building an xfs image with hard links and times needs root (a loop mount)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "xfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, XFSSizeMiB<<20); err != nil {
		t.Fatal(err)
	}
	Run(t, nil, "mkfs.xfs", append(append([]string{"-q"}, mkfsOpts...), img)...)
	Tool(t, "losetup")
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("no loop device: %v %s", err, out)
	}
	loop := strings.TrimSpace(string(out))
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	detach := func() { _ = exec.Command("losetup", "-d", loop).Run() }
	if out, err := exec.Command("mount", loop, mnt).CombinedOutput(); err != nil {
		detach()
		t.Skipf("mount xfs: %v %s", err, out)
	}
	mounted := true
	cleanup := func() {
		if mounted {
			_ = exec.Command("umount", mnt).Run()
			mounted = false
		}
		detach()
	}
	t.Cleanup(cleanup)
	Run(t, nil, "cp", "-a", "--sparse=always", src+"/.", mnt)
	SetTimes(t, mnt)
	Run(t, nil, "umount", mnt)
	mounted = false
	detach()
	return img
}
