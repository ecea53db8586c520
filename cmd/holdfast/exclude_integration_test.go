package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The guest disk of the exclusion tests: GPT with ext4, swap and xfs.
const (
	exExtStart  = 2048   // sectors; 64 MiB
	exSwapStart = 133120 // 16 MiB
	exXFSStart  = 165888 // 300 MiB
	exDiskSize  = 384 << 20
)

// partImage makes a file of size bytes with random bytes at [from, to):
// stale data a file system made over it treats as free.
func partImage(t *testing.T, path string, size, from, to int64) {
	t.Helper()
	writeImage(t, path, size, map[int64][]byte{from: randomBytes(int(to - from))})
}

// exclusionDisk builds the guest disk: an ext4 filled then with its
// largest file deleted, a used swap partition and an xfs, each over stale
// random bytes. It returns the disk and the ext4 and xfs images.
func exclusionDisk(t *testing.T, dir string) (disk, ext, xfs string) {
	t.Helper()
	needTools(t, "sfdisk", "mkfs.ext4", "debugfs", "mkswap", "mkfs.xfs")
	files := filepath.Join(dir, "files")
	if err := os.MkdirAll(filepath.Join(files, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]int{"keep": 6 << 20, "big": 16 << 20, "sub/small": 3000, "sub/two": 2 << 20} {
		if err := os.WriteFile(filepath.Join(files, name), randomBytes(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ext = filepath.Join(dir, "ext.img")
	partImage(t, ext, 64<<20, 8<<20, 40<<20)
	sh(t, "mkfs.ext4", "-q", "-F", "-E", "nodiscard", "-d", files, ext)
	sh(t, "debugfs", "-w", "-R", "rm big", ext)
	swap := filepath.Join(dir, "swap.img")
	writeImage(t, swap, 16<<20, nil)
	sh(t, "mkswap", swap)
	f, err := os.OpenFile(swap, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(randomBytes(8<<20), 4<<20); err != nil { // pages the guest swapped out
		t.Fatal(err)
	}
	_ = f.Close()
	xfs = filepath.Join(dir, "xfs.img")
	partImage(t, xfs, 300<<20, 8<<20, 40<<20)
	proto := filepath.Join(dir, "proto")
	if err := os.WriteFile(proto, []byte(fmt.Sprintf("/dev/null\n0 0\nd--755 0 0\nkeep ---644 0 0 %s\ntwo ---644 0 0 %s\n$\n",
		filepath.Join(files, "keep"), filepath.Join(files, "sub/two"))), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "mkfs.xfs", "-q", "-f", "-K", "-p", proto, xfs)
	disk = filepath.Join(dir, "guest.img")
	writeImage(t, disk, exDiskSize, nil)
	c := exec.Command("sfdisk", "-q", disk)
	c.Stdin = strings.NewReader(fmt.Sprintf("label: gpt\nstart=%d, size=131072, type=linux\nstart=%d, size=32768, type=swap\nstart=%d, size=614400, type=linux\n",
		exExtStart, exSwapStart, exXFSStart))
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	for start, src := range map[int64]string{exExtStart: ext, exSwapStart: swap, exXFSStart: xfs} {
		copyInto(t, disk, start*512, src)
	}
	return disk, ext, xfs
}

func copyInto(t *testing.T, disk string, off int64, src string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(disk, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(io.NewOffsetWriter(out, off), in); err != nil {
		t.Fatal(err)
	}
}

// extract copies n bytes at sector start of disk into a new file.
func extract(t *testing.T, disk string, start, n int64, dst string) string {
	t.Helper()
	in, err := os.Open(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, io.NewSectionReader(in, start*512, n)); err != nil {
		t.Fatal(err)
	}
	return dst
}

// sameTree fails unless directories a and b hold the same regular files
// with the same bytes.
func sameTree(t *testing.T, a, b string) {
	t.Helper()
	list := func(root string) map[string][]byte {
		m := map[string][]byte{}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			m[rel], err = os.ReadFile(p)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	x, y := list(a), list(b)
	if len(x) == 0 || len(x) != len(y) {
		t.Fatalf("%s holds %d files, %s %d", a, len(x), b, len(y))
	}
	for name, data := range x {
		if !bytes.Equal(data, y[name]) {
			t.Fatalf("%s differs between %s and %s", name, a, b)
		}
	}
}

// TestExcludeFreeAndSwap backs the guest disk up with and without
// --exclude-free --exclude-swap (into two repositories, so dedup does not
// blur the comparison), restores the excluded backup, and checks that the
// file systems are clean and every file is identical, and that the swap
// partition kept its signature.
func TestExcludeFreeAndSwap(t *testing.T) {
	needTools(t, "e2fsck", "blkid", "xfs_repair")
	plain, ex := newEnv(t), newEnv(t)
	plain.init()
	ex.init()
	disk, ext, xfs := exclusionDisk(t, ex.dir)

	p := plain.backupJSON("vm", disk).Disks[0]
	var b backupJSON
	if err := json.Unmarshal([]byte(ex.ok("backup", "--json", "--name", "vm", "--exclude-free", "--exclude-swap", disk)), &b); err != nil {
		t.Fatal(err)
	}
	d := b.Disks[0]
	t.Logf("without exclusion: new %d, stored %d; with: new %d, stored %d, excluded %v",
		p.BytesNew, p.BytesStored, d.BytesNew, d.BytesStored, d.Excluded)
	if d.Excluded["swap"] != 16<<20-4096 || d.Excluded["free"] < 40<<20 || len(d.Warnings) != 0 {
		t.Fatalf("excluded %v, warnings %v", d.Excluded, d.Warnings)
	}
	if p.BytesNew < 60<<20 || d.BytesNew*2 > p.BytesNew || d.BytesStored*2 > p.BytesStored {
		t.Fatalf("exclusion did not store clearly less: %d new / %d stored against %d / %d",
			d.BytesNew, d.BytesStored, p.BytesNew, p.BytesStored)
	}

	restored := filepath.Join(ex.dir, "restored.img")
	out := ex.ok("restore", b.Point, "--to", restored)
	total := d.Excluded["free"] + d.Excluded["swap"]
	if want := fmt.Sprintf("%d bytes were excluded at backup (free space, swap) and restored as zeros", total); !strings.Contains(out, want) {
		t.Fatalf("restore output %q does not say %q", out, want)
	}
	var rj restoreJSON
	if err := json.Unmarshal([]byte(ex.ok("restore", b.Point, "--to", restored, "--force", "--json")), &rj); err != nil {
		t.Fatal(err)
	}
	if rj.BytesExcluded != total || rj.Excluded["swap"] != d.Excluded["swap"] {
		t.Fatalf("restore --json: %+v", rj)
	}

	if out := ex.ok("restore", b.Point, "--to", restored, "--rollback"); !strings.Contains(out, "were excluded at backup (free space, swap)") {
		t.Fatalf("rollback output %q does not say what was excluded", out)
	}

	rext := extract(t, restored, exExtStart, 64<<20, filepath.Join(ex.dir, "r-ext.img"))
	sh(t, "e2fsck", "-fn", rext)
	srcTree, gotTree := filepath.Join(ex.dir, "src-tree"), filepath.Join(ex.dir, "got-tree")
	for img, dir := range map[string]string{ext: srcTree, rext: gotTree} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		sh(t, "debugfs", "-R", "rdump / "+dir, img)
	}
	sameTree(t, srcTree, gotTree)

	rswap := extract(t, restored, exSwapStart, 16<<20, filepath.Join(ex.dir, "r-swap.img"))
	if typ := strings.TrimSpace(sh(t, "blkid", "-p", "-o", "value", "-s", "TYPE", rswap)); typ != "swap" {
		t.Fatalf("restored swap partition is %q", typ)
	}

	rxfs := extract(t, restored, exXFSStart, 300<<20, filepath.Join(ex.dir, "r-xfs.img"))
	sh(t, "xfs_repair", "-n", "-f", rxfs)
	t.Run("xfs files", func(t *testing.T) { sameXFSFiles(t, xfs, rxfs) })
}

// sameXFSFiles mounts both xfs images read-only (root only) and compares
// their files.
func sameXFSFiles(t *testing.T, a, b string) {
	if os.Geteuid() != 0 {
		t.Skip("comparing xfs files needs root to mount the images (xfs_repair -n passed)")
	}
	var dirs []string
	for _, img := range []string{a, b} {
		mnt := t.TempDir()
		if out, err := exec.Command("mount", "-o", "ro,loop,nouuid", img, mnt).CombinedOutput(); err != nil {
			t.Skipf("cannot mount a loop device here: %v %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("umount", mnt).Run() })
		dirs = append(dirs, mnt)
	}
	sameTree(t, dirs[0], dirs[1])
}

// TestDistributedExcludeSwap: a server job's exclude_swap reaches the
// proxy, which leaves the swap body out of the point.
func TestDistributedExcludeSwap(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	needTools(t, "mkswap")
	c := newCluster(t, "")
	dir := c.e.dir
	c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 2, "--restore-root", dir)
	c.waitAgents("repo1", "proxy1")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	swap := filepath.Join(dir, "swap.img")
	writeImage(t, swap, 8<<20, nil)
	sh(t, "mkswap", swap)
	copyInto(t, swap, 2<<20, writeTemp(t, dir, randomBytes(6<<20)))
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-file", pw, "--vm", "vm1="+swap, "--exclude-swap", "--exclude", "/var/cache")
	if out := c.e.ok("job", "show", "nightly"); !strings.Contains(out, "Excludes:") || !strings.Contains(out, "swap, /var/cache") {
		t.Fatalf("job show does not say what the job excludes:\n%s", out)
	}
	res := c.runJob("nightly")
	checkJobResult(t, res, 1, 1)
	if d := res.VMs[0].Disks[0]; d.BytesRead > 1<<20 || d.BytesWritten > 64<<10 {
		t.Fatalf("the swap body was read or stored: %+v", d)
	}
}

func writeTemp(t *testing.T, dir string, b []byte) string {
	t.Helper()
	f, err := os.CreateTemp(dir, "piece")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	return f.Name()
}

// TestExcludePaths: --exclude /cache leaves out the data of the files
// under /cache and --exclude-swap the body of /swapfile, on an ext4 and an
// xfs partition; the restored file systems are clean, the other files are
// identical, the excluded ones read as zeros and the swap file keeps its
// signature. --exclude / is a usage error.
func TestExcludePaths(t *testing.T) {
	needTools(t, "sfdisk", "mkfs.ext4", "debugfs", "e2fsck", "mkswap", "blkid", "mkfs.xfs", "xfs_repair")
	e := newEnv(t)
	e.init()
	files := filepath.Join(e.dir, "files")
	if err := os.MkdirAll(filepath.Join(files, "cache", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]int{"keep": 3 << 20, "cache/big": 8 << 20, "cache/sub/small": 5000} {
		if err := os.WriteFile(filepath.Join(files, name), randomBytes(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	swapfile := filepath.Join(files, "swapfile")
	writeImage(t, swapfile, 4<<20, nil)
	sh(t, "mkswap", swapfile)
	copyInto(t, swapfile, 4096, writeTemp(t, e.dir, randomBytes(4<<20-4096)))
	ext := filepath.Join(e.dir, "ext.img")
	writeImage(t, ext, 64<<20, nil)
	sh(t, "mkfs.ext4", "-q", "-F", "-d", files, ext)
	xfs := filepath.Join(e.dir, "xfs.img")
	writeImage(t, xfs, 300<<20, nil)
	proto := filepath.Join(e.dir, "proto")
	if err := os.WriteFile(proto, []byte(fmt.Sprintf("/dev/null\n0 0\nd--755 0 0\nkeep ---644 0 0 %s\ncache d--755 0 0\nbig ---644 0 0 %s\n$\n$\n",
		filepath.Join(files, "keep"), filepath.Join(files, "cache/big"))), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, "mkfs.xfs", "-q", "-f", "-p", proto, xfs)
	disk := filepath.Join(e.dir, "guest.img")
	writeImage(t, disk, 384<<20, nil)
	c := exec.Command("sfdisk", "-q", disk)
	c.Stdin = strings.NewReader(fmt.Sprintf("label: gpt\nstart=%d, size=131072, type=linux\nstart=%d, size=614400, type=linux\n", exExtStart, exXFSStart))
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	copyInto(t, disk, exExtStart*512, ext)
	copyInto(t, disk, exXFSStart*512, xfs)

	if r := e.run("backup", "--name", "vm", "--exclude", "/", disk); r.code != exitUsage || !strings.Contains(r.stderr, "below the file system's root") {
		t.Fatalf("--exclude /: exit %d, stderr %s", r.code, r.stderr)
	}
	var b backupJSON
	if err := json.Unmarshal([]byte(e.ok("backup", "--json", "--name", "vm", "--exclude", "/cache", "--exclude-swap", disk)), &b); err != nil {
		t.Fatal(err)
	}
	d := b.Disks[0]
	if d.Excluded["path"] != 2*(8<<20)+5000 || d.Excluded["swap"] != 4<<20-4096 || len(d.Warnings) != 0 {
		t.Fatalf("excluded %v, warnings %v", d.Excluded, d.Warnings)
	}
	restored := filepath.Join(e.dir, "restored.img")
	if out := e.ok("restore", b.Point, "--to", restored); !strings.Contains(out, "(swap, excluded paths) and restored as zeros") {
		t.Fatalf("restore output %q", out)
	}

	rext := extract(t, restored, exExtStart, 64<<20, filepath.Join(e.dir, "r-ext.img"))
	sh(t, "e2fsck", "-fn", rext)
	got := filepath.Join(e.dir, "got")
	if err := os.Mkdir(got, 0o755); err != nil {
		t.Fatal(err)
	}
	sh(t, "debugfs", "-R", "rdump / "+got, rext)
	sameFile(t, filepath.Join(files, "keep"), filepath.Join(got, "keep"))
	for _, name := range []string{"cache/big", "cache/sub/small"} {
		b, err := os.ReadFile(filepath.Join(got, name))
		if err != nil || !bytes.Equal(b, make([]byte, len(b))) || len(b) == 0 {
			t.Fatalf("restored %s: %d bytes, not all zeros (%v)", name, len(b), err)
		}
	}
	if typ := strings.TrimSpace(sh(t, "blkid", "-p", "-o", "value", "-s", "TYPE", filepath.Join(got, "swapfile"))); typ != "swap" {
		t.Fatalf("restored swap file is %q", typ)
	}
	rxfs := extract(t, restored, exXFSStart, 300<<20, filepath.Join(e.dir, "r-xfs.img"))
	sh(t, "xfs_repair", "-n", "-f", rxfs)
}
