package guestfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/guestdisk"
	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

// openVolume opens partition part of a disk image with guestdisk and Open.
func openVolume(t *testing.T, img string, part int) *FS {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	st, _ := f.Stat()
	vs, err := guestdisk.Volumes(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Partition == part {
			fsys, err := Open(v.Section(f), v.Size, v.Content)
			if err != nil {
				t.Fatalf("open partition %d (%s): %v", part, v.Content, err)
			}
			return fsys
		}
	}
	t.Fatalf("no partition %d in %+v", part, vs)
	return nil
}

// checkTree compares what fsys reads with the source tree src: every
// entry's type, permissions, size, mtime, owner (when root made src),
// content, symlink target, and hard links as one inode with its link count.
type checks struct{ times, links, sparse bool }

var allChecks = checks{times: true, links: true, sparse: true}

func checkTree(t *testing.T, fsys *FS, src string, c checks) {
	t.Helper()
	inodes := map[uint64]uint64{} // guest inode → source inode
	n := 0
	err := filepath.Walk(src, func(p string, wi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		st, err := fsys.Lstat(rel)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		n++
		ws := wi.Sys().(*syscall.Stat_t)
		if st.Mode != wi.Mode() || st.Perm != ws.Mode {
			t.Errorf("%s: mode %v (%o), want %v (%o)", rel, st.Mode, st.Perm, wi.Mode(), ws.Mode)
		}
		if st.UID != ws.Uid || st.GID != ws.Gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, st.UID, st.GID, ws.Uid, ws.Gid)
		}
		if c.times && !wi.IsDir() && !st.Mtime.Equal(wi.ModTime()) {
			t.Errorf("%s: mtime %v, want %v", rel, st.Mtime, wi.ModTime())
		}
		switch {
		case wi.Mode().IsRegular():
			checkFile(t, fsys, rel, p, st, wi)
			if prev, ok := inodes[st.Ino]; ok && prev != ws.Ino && c.links {
				t.Errorf("%s: guest inode %d shared by different source files", rel, st.Ino)
			}
			inodes[st.Ino] = ws.Ino
			if c.links && st.Nlink != uint32(ws.Nlink) {
				t.Errorf("%s: %d links, want %d", rel, st.Nlink, ws.Nlink)
			}
		case wi.Mode()&fs.ModeSymlink != 0:
			want, _ := os.Readlink(p)
			if got, err := fsys.Readlink(rel); err != nil || got != want {
				t.Errorf("%s: link %q (%v), want %q", rel, got, err, want)
			}
		case wi.IsDir():
			es, err := fsys.ReadDir(rel)
			wes, _ := os.ReadDir(p)
			es = slices.DeleteFunc(es, func(e DirEntry) bool { return rel == "." && e.Name == "lost+found" })
			if err != nil || len(es) != len(wes) {
				t.Errorf("%s: %d entries (%v), want %d", rel, len(es), err, len(wes))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 300 {
		t.Fatalf("checked %d entries", n)
	}
	if !c.links {
		return
	}
	if a, _ := fsys.Lstat("links/a"); a.Ino == 0 {
		t.Fatal("links/a has no inode")
	} else if b, _ := fsys.Lstat("data/a-too"); b.Ino != a.Ino || a.Nlink != 3 {
		t.Errorf("hard links: inodes %d and %d, %d links", a.Ino, b.Ino, a.Nlink)
	}
	if !c.sparse {
		return
	}
	exts, err := fsys.Extents("sparse.img")
	if err != nil {
		t.Fatal(err)
	}
	var data int64
	for _, e := range exts {
		data += e.Length
	}
	if data == 0 || data > 1<<20 {
		t.Errorf("sparse.img: %d bytes in %d extents, want a few blocks", data, len(exts))
	}
	if exts, err := fsys.Extents("hole.img"); err != nil || len(exts) != 0 {
		t.Errorf("hole.img: extents %v (%v), want none", exts, err)
	}
}

func checkFile(t *testing.T, fsys *FS, rel, p string, st Stat, wi os.FileInfo) {
	t.Helper()
	if st.Size != wi.Size() {
		t.Errorf("%s: size %d, want %d", rel, st.Size, wi.Size())
	}
	want, _ := os.ReadFile(p)
	f, err := fsys.Open(rel)
	if err != nil {
		t.Errorf("%s: %v", rel, err)
		return
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("%s: content differs (%d vs %d bytes, %v)", rel, len(got), len(want), err)
	}
	// a read across a boundary at an odd offset
	if len(want) > 5000 {
		b := make([]byte, 4097)
		if _, err := f.ReadAt(b, 903); err != nil || !bytes.Equal(b, want[903:903+4097]) {
			t.Errorf("%s: ReadAt(903) differs (%v)", rel, err)
		}
	}
}

func TestExt4(t *testing.T) {
	src := guesttree.Build(t, t.TempDir(), guesttree.Options{})
	cases := []struct {
		name, script string
		part         int
		opts         []string
	}{
		{"gpt", "label: gpt\nstart=2048, size=180224, type=linux\n", 1, nil},
		{"mbr-second", "label: dos\nstart=2048, size=4096, type=83\nstart=8192, size=180224, type=83\n", 2, nil},
		{"no-table-128-byte-inodes", "", 0, []string{"-I", "128"}},
		{"inline-data", "label: gpt\nstart=2048, size=180224, type=linux\n", 1, []string{"-O", "inline_data"}},
		{"ext3-block-maps", "label: gpt\nstart=2048, size=180224, type=linux\n", 1, []string{"-t", "ext3", "-O", "^extent"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fsImg := guesttree.Ext4(t, src, 80, c.opts...)
			off := int64(2048 * 512)
			if c.part == 2 {
				off = 8192 * 512
			}
			img := fsImg
			if c.script != "" {
				img = guesttree.Disk(t, 100, c.script, map[int64]string{off: fsImg})
			}
			fsys := openVolume(t, img, c.part)
			checkTree(t, fsys, src, allChecks)
			if c.name == "inline-data" {
				f, err := fsys.Open("hello.txt")
				if err != nil || !f.n.isInl || len(f.Extents()) != 0 {
					t.Errorf("hello.txt is not inline data (%v)", err)
				}
			}
		})
	}
}

func TestNotFoundAndNotDir(t *testing.T) {
	src := guesttree.Build(t, t.TempDir(), guesttree.Options{BigDir: 3, Deep: 2})
	fsys := openVolume(t, guesttree.Ext4(t, src, 80), 0)
	if _, err := fsys.Lstat("no/such"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing path: %v", err)
	}
	if _, err := fsys.ReadDir("hello.txt/x"); !errors.Is(err, ErrNotDir) {
		t.Errorf("file as directory: %v", err)
	}
	// a symlink in the middle of a path is followed within the guest
	if st, err := fsys.Lstat("abs-link"); err != nil || st.Mode&fs.ModeSymlink == 0 {
		t.Errorf("abs-link: %v %v", st.Mode, err)
	}
	if err := os.Symlink("etc", filepath.Join(src, "etc-link")); err != nil {
		t.Fatal(err)
	}
	fsys = openVolume(t, guesttree.Ext4(t, src, 80), 0)
	if st, err := fsys.Lstat("etc-link/config"); err != nil || st.Size != 5000 {
		t.Errorf("through a symlink: %+v %v", st, err)
	}
	if st, err := fsys.Lstat("../../etc/./config"); err != nil || st.Size != 5000 {
		t.Errorf("dot-dot above the root: %+v %v", st, err)
	}
}
