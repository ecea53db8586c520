package guestfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

// smallTree is a tree with one of each kind, for fuzz seed images.
func smallTree(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for i := range 40 {
		p := filepath.Join(dir, "dir", string(rune('a'+i%26))+string(rune('a'+i/26)))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(i)}, i*300), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("dir/aa", filepath.Join(dir, "s")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(string(bytes.Repeat([]byte("x/"), 50)), filepath.Join(dir, "long")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// seedImage builds a small real filesystem image, or skips.
func seedImage(f *testing.F, size int64, env []string, args ...string) []byte {
	f.Helper()
	if _, err := exec.LookPath(args[0]); err != nil {
		f.Skipf("%s not installed: %v", args[0], err)
	}
	img := filepath.Join(f.TempDir(), "seed.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		f.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		f.Fatal(err)
	}
	args = append(args, img)
	c := exec.Command(args[0], args[1:]...)
	c.Env = append(os.Environ(), env...)
	if out, err := c.CombinedOutput(); err != nil {
		f.Fatalf("%v: %v\n%s", args, err, out)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// exercise reads everything a damaged image lets it read: it must return
// errors, never panic, loop or allocate without bound.
func exercise(t *testing.T, img []byte, content string) {
	fsys, err := Open(bytes.NewReader(img), int64(len(img)), content)
	if err != nil {
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("open: unclassified error %v", err)
		}
		return
	}
	buf := make([]byte, 64<<10)
	visited := 0
	_ = fsys.Walk("/", func(p string, st Stat, err error) error {
		if visited++; visited > 10000 || err != nil {
			return err
		}
		switch {
		case st.Mode.IsRegular():
			if f, err := fsys.OpenInode(st.Ino); err == nil {
				_, _ = f.ReadAt(buf, 0)
				_, _ = f.ReadAt(buf, st.Size/2)
			}
		case st.Mode&fs.ModeSymlink != 0:
			_, _ = fsys.ReadlinkInode(st.Ino)
		}
		_, _ = fsys.Readlink(p)
		return nil
	})
	_, _ = fsys.Lstat("dir/../s/x/y")
}

// fuzzPatched fuzzes a real image with patches at offsets (seeded at the
// structures the reader parses).
func fuzzPatched(f *testing.F, img []byte, content string, seedOffsets []int64) {
	for _, off := range seedOffsets {
		f.Add(uint32(off), []byte{0xff, 0xff, 0xff, 0xff})
		f.Add(uint32(off+4), []byte{0, 0, 0, 0x80})
		f.Add(uint32(off+2), []byte{0x01})
	}
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		b := append([]byte(nil), img...)
		if len(patch) > 4096 {
			patch = patch[:4096]
		}
		copy(b[int(off)%len(b):], patch)
		exercise(t, b, content)
	})
}

// FuzzExt4 feeds damaged real ext4 images (superblock, group descriptors,
// inode table, directory and extent blocks) to the reader.
func FuzzExt4(f *testing.F) {
	src := smallTree(f)
	img := seedImage(f, 1<<20, nil, "mkfs.ext4", "-q", "-F", "-b", "1024", "-N", "64", "-O", "^has_journal", "-d", src, "-E", "root_owner=0:0")
	var offs []int64
	table := int64(binary.LittleEndian.Uint32(img[2048+8:])) * 1024
	for i := int64(0); i < 16; i++ {
		offs = append(offs, table+i*256, table+i*256+40)
	}
	offs = append(offs, 1024, 1024+24, 2048)
	fuzzPatched(f, img, "ext4", offs)
}

// FuzzXFS feeds damaged real xfs images (superblock, inodes, directory
// blocks) to the reader. mkfs.xfs makes a 16 MiB filesystem only for the
// test suites it recognises by their environment.
func FuzzXFS(f *testing.F) {
	proto := guesttree.ProtoFile(f, smallTree(f))
	env := []string{"TEST_DIR=1", "TEST_DEV=1", "QA_CHECK_FS=1"}
	img := seedImage(f, 16<<20, env, "mkfs.xfs", "-q", "-f", "-p", proto)
	x, err := openXFS(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		f.Fatal(err)
	}
	root := int64(x.rootIno>>x.inoPBLog)*x.blockSize + int64(x.rootIno&(1<<x.inoPBLog-1))*x.inodeSize
	offs := []int64{0, 4, 56, 84, 104, 124}
	for i := int64(0); i < 8; i++ {
		offs = append(offs, root+i*x.inodeSize, root+i*x.inodeSize+100, root+i*x.inodeSize+176)
	}
	if n, err := x.inode(x.rootIno); err == nil {
		es, _ := x.readDir(n)
		for _, e := range es {
			if c, err := x.inode(e.Ino); err == nil {
				for _, ext := range c.extents {
					offs = append(offs, ext.Physical, ext.Physical+64)
				}
			}
		}
	}
	fuzzPatched(f, img, "xfs", offs)
}

// FuzzExt2 feeds damaged real ext2 images (block maps: no extents; the
// inode table and the indirect blocks of files past 12 blocks) to the
// reader.
func FuzzExt2(f *testing.F) {
	src := smallTree(f)
	if err := os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte{7}, 300<<10), 0o644); err != nil {
		f.Fatal(err)
	}
	img := seedImage(f, 2<<20, nil, "mkfs.ext4", "-q", "-F", "-b", "1024", "-N", "64", "-O", "^has_journal,^extent,^64bit",
		"-d", src, "-E", "root_owner=0:0")
	fsys, err := Open(bytes.NewReader(img), int64(len(img)), "ext4")
	if err != nil {
		f.Fatal(err)
	}
	st, err := fsys.Lstat("big")
	if err != nil {
		f.Fatal(err)
	}
	e := fsys.d.(*ext4)
	b, err := e.inodeBytes(st.Ino)
	if err != nil {
		f.Fatal(err)
	}
	var offs []int64
	for _, slot := range []int{12, 13, 14} { // i_block's indirect, double and triple indirect pointers
		if p := int64(binary.LittleEndian.Uint32(b[40+4*slot:])); p != 0 {
			offs = append(offs, p*1024, p*1024+4)
		}
	}
	table := int64(binary.LittleEndian.Uint32(img[2048+8:])) * 1024
	ino := table + int64(st.Ino-1)*e.inodeSize
	offs = append(offs, ino+4, ino+40+48)
	fuzzPatched(f, img, "ext4", offs)
}
