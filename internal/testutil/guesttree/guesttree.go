// Package guesttree builds, for tests, a directory tree with what a guest
// filesystem reader must keep (a large sparse file, hard links, short and
// long symlinks, a FIFO, a deep tree, a large directory, setuid and 0600 modes,
// owners, past times) and real ext4 and xfs images of it without root
// (mkfs.ext4 -d; mkfs.xfs -p protofile), placed at a partition's offset in
// a disk image made with sfdisk; and Compare, which checks a tree restored
// or read back against the source.
package guesttree

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Past is the modification time Build gives every entry (atime a day later).
var Past = time.Date(2019, 3, 4, 5, 6, 7, 0, time.UTC)

// SparseSize is the size of the sparse file "sparse.img".
const SparseSize = 256 << 20

// Options shape the tree Build makes.
type Options struct {
	BigDir int // entries in "big" (0: 300)
	Deep   int // depth of "deep/d/d/…" (0: 20)
	// NoSparse leaves sparse.img out (mkfs.xfs 6.1 -p writes a file as
	// large as an allocation group over the next group's headers).
	NoSparse bool
}

// Build fills dir with the test tree and returns dir.
func Build(t testing.TB, dir string, o Options) string {
	t.Helper()
	if o.BigDir == 0 {
		o.BigDir = 300
	}
	if o.Deep == 0 {
		o.Deep = 20
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, data []byte, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, mode))
		must(os.Chmod(p, mode))
	}
	write("hello.txt", []byte("hello, guest\n"), 0o644)
	write("empty", nil, 0o644)
	write("secret", []byte("only the owner\n"), 0o600)
	write("bin/suid", bytes.Repeat([]byte("\x7fELF"), 3000), os.ModeSetuid|os.ModeSetgid|0o755)
	write("etc/config", bytes.Repeat([]byte("key=value\n"), 500), 0o640)
	big := make([]byte, 3<<20+123)
	for i := range big {
		big[i] = byte(i*7 + i>>12)
	}
	write("data/big.bin", big, 0o644)
	if !o.NoSparse {
		// a sparse file: data at 0, 100 MiB and the end, holes between
		f, err := os.Create(filepath.Join(dir, "sparse.img"))
		must(err)
		for _, off := range []int64{0, 100 << 20, SparseSize - 8192} {
			_, err := f.WriteAt(bytes.Repeat([]byte{0xab}, 8192), off)
			must(err)
		}
		must(f.Truncate(SparseSize))
		must(f.Close())
		// all hole: no data at all
		must(os.WriteFile(filepath.Join(dir, "hole.img"), nil, 0o644))
		must(os.Truncate(filepath.Join(dir, "hole.img"), SparseSize))
	}
	// hard links: three names of one file
	write("links/a", []byte("linked content\n"), 0o644)
	must(os.Link(filepath.Join(dir, "links/a"), filepath.Join(dir, "links/b")))
	must(os.Link(filepath.Join(dir, "links/a"), filepath.Join(dir, "data/a-too")))
	must(os.Symlink("hello.txt", filepath.Join(dir, "short-link")))
	long := strings.Repeat("very-long-directory-name/", 5) + "target-beyond-sixty-bytes"
	must(os.Symlink(long, filepath.Join(dir, "long-link")))
	must(os.Symlink("/etc/config", filepath.Join(dir, "abs-link")))
	deep := dir
	for range o.Deep {
		deep = filepath.Join(deep, "d")
	}
	must(os.MkdirAll(deep, 0o755))
	must(os.WriteFile(filepath.Join(deep, "bottom.txt"), []byte("the bottom\n"), 0o644))
	for i := range o.BigDir {
		write(fmt.Sprintf("big/file-with-a-long-name-%05d", i), []byte(fmt.Sprintf("entry %d\n", i)), 0o644)
	}
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o640))
	must(os.Mkdir(filepath.Join(dir, "sticky"), 0o755))
	must(os.Chmod(filepath.Join(dir, "sticky"), os.ModeSticky|0o777))
	if os.Geteuid() == 0 {
		must(os.Lchown(filepath.Join(dir, "etc/config"), 1234, 5678))
		must(os.Lchown(filepath.Join(dir, "short-link"), 1234, 5678))
	}
	SetTimes(t, dir)
	return dir
}

// SetTimes gives every entry under dir the time Past (symlinks included),
// children before parents.
func SetTimes(t testing.TB, dir string) {
	t.Helper()
	var paths []string
	if err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		paths = append(paths, p)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ts := []unix.Timespec{unix.NsecToTimespec(Past.Add(24 * time.Hour).UnixNano()), unix.NsecToTimespec(Past.UnixNano())}
	for i := len(paths) - 1; i >= 0; i-- {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, paths[i], ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
}

// Tool skips the test when name is not installed.
func Tool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed (scripts/setup installs it): %v", name, err)
	}
}

// Run runs a command, failing the test with its output on error.
func Run(t testing.TB, stdin io.Reader, name string, args ...string) string {
	t.Helper()
	Tool(t, name)
	c := exec.Command(name, args...)
	c.Stdin = stdin
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Ext4 makes an ext4 filesystem image of sizeMiB from src (mkfs.ext4 -d),
// with extra mkfs options, then indexes its directories (e2fsck -fD) so
// large ones are htrees.
func Ext4(t testing.TB, src string, sizeMiB int, opts ...string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "ext4.img")
	args := append([]string{"-q", "-F", "-b", "4096", "-d", src}, opts...)
	args = append(args, img, fmt.Sprintf("%dM", sizeMiB))
	Run(t, nil, "mkfs.ext4", args...)
	Tool(t, "e2fsck")
	c := exec.Command("e2fsck", "-fyD", img)
	if out, err := c.CombinedOutput(); err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() > 1 { // 1: "errors corrected" (the reindex)
			t.Fatalf("e2fsck -fyD: %v\n%s", err, out)
		}
	}
	return img
}

// Disk makes a disk image of sizeMiB with the sfdisk script and copies each
// filesystem image to the byte offset given beside it.
func Disk(t testing.TB, sizeMiB int, script string, parts map[int64]string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(sizeMiB) << 20); err != nil {
		t.Fatal(err)
	}
	if script != "" {
		Run(t, strings.NewReader(script), "sfdisk", "-q", img)
	}
	for off, fsImg := range parts {
		copySparse(t, f, off, fsImg)
	}
	return img
}

// copySparse copies src into dst at off, skipping zero blocks so the
// image stays sparse.
func copySparse(t testing.TB, dst *os.File, off int64, src string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	for pos := int64(0); ; {
		n, err := in.ReadAt(buf, pos)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := dst.WriteAt(buf[:n], off+pos); werr != nil {
				t.Fatal(werr)
			}
		}
		pos += int64(n)
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// SharedExt4Blocks is how many 4 KiB blocks each file of SharedExt4 maps.
const SharedExt4Blocks = 2040

// SharedExt4 makes an 8 MiB ext4 image whose files /f0 … /f<files-1> each
// map blocks 1–2040 of the volume as their one extent (SharedExt4Blocks
// blocks, almost the whole volume): every file legal on its own, together
// files volumes of data (a hostile image, or reflinks taken far).
func SharedExt4(t testing.TB, files int) string {
	t.Helper()
	Tool(t, "debugfs")
	src := t.TempDir()
	var req strings.Builder
	for i := range files {
		name := fmt.Sprintf("f%d", i)
		if err := os.WriteFile(filepath.Join(src, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		// an extent header with one entry, then file block 0 → the blocks from block 1
		for _, r := range []string{fmt.Sprintf("size %d", SharedExt4Blocks*4096), "block[0] 0x0001F30A", "block[1] 4",
			"block[2] 0", "block[3] 0", fmt.Sprintf("block[4] %d", SharedExt4Blocks), "block[5] 1", "flags 0x80000"} {
			fmt.Fprintf(&req, "sif /%s %s\n", name, r)
		}
	}
	img := Ext4(t, src, 8, "-O", "^has_journal")
	Run(t, strings.NewReader(req.String()), "debugfs", "-w", "-f", "-", img)
	return img
}
