package guesttree

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// CompareOptions say what Compare checks beyond names, types, content,
// permissions and symlink targets.
type CompareOptions struct {
	Owners bool // uid and gid
	Times  bool // mtime
	Links  bool // link counts of regular files
	Sparse bool // sparse.img takes much less room than its size
}

// Compare checks that the tree got holds what want holds.
func Compare(t testing.TB, want, got string, o CompareOptions) {
	t.Helper()
	n := 0
	err := filepath.Walk(want, func(p string, wi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		if rel == "lost+found" {
			return filepath.SkipDir
		}
		gp := filepath.Join(got, rel)
		gi, err := os.Lstat(gp)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			return nil
		}
		n++
		compareInfo(t, rel, wi, gi, o)
		switch {
		case wi.Mode().IsRegular():
			wb, _ := os.ReadFile(p)
			gb, err := os.ReadFile(gp)
			if err != nil || !bytes.Equal(wb, gb) {
				t.Errorf("%s: content differs (%d vs %d bytes, %v)", rel, len(wb), len(gb), err)
			}
		case wi.Mode()&os.ModeSymlink != 0:
			wl, _ := os.Readlink(p)
			gl, err := os.Readlink(gp)
			if err != nil || wl != gl {
				t.Errorf("%s: link %q, want %q (%v)", rel, gl, wl, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 10 {
		t.Fatalf("compared only %d entries", n)
	}
	if o.Sparse {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(got, "sparse.img"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Blocks*512 > SparseSize/8 {
			t.Errorf("sparse.img takes %d bytes for %d: not sparse", st.Blocks*512, SparseSize)
		}
		if err := syscall.Stat(filepath.Join(got, "hole.img"), &st); err != nil {
			t.Fatal(err)
		}
		if st.Blocks != 0 {
			t.Errorf("hole.img (no data) takes %d bytes", st.Blocks*512)
		}
	}
}

func compareInfo(t testing.TB, rel string, wi, gi os.FileInfo, o CompareOptions) {
	t.Helper()
	if wi.Mode() != gi.Mode() {
		t.Errorf("%s: mode %v, want %v", rel, gi.Mode(), wi.Mode())
	}
	if wi.Mode().IsRegular() && wi.Size() != gi.Size() {
		t.Errorf("%s: size %d, want %d", rel, gi.Size(), wi.Size())
	}
	if o.Times && (wi.Mode().IsRegular() || wi.Mode()&os.ModeSymlink != 0) && !wi.ModTime().Equal(gi.ModTime()) {
		t.Errorf("%s: mtime %v, want %v", rel, gi.ModTime(), wi.ModTime())
	}
	ws, gs := wi.Sys().(*syscall.Stat_t), gi.Sys().(*syscall.Stat_t)
	if o.Owners && (ws.Uid != gs.Uid || ws.Gid != gs.Gid) {
		t.Errorf("%s: owner %d:%d, want %d:%d", rel, gs.Uid, gs.Gid, ws.Uid, ws.Gid)
	}
	if o.Links && wi.Mode().IsRegular() && ws.Nlink != gs.Nlink {
		t.Errorf("%s: %d links, want %d", rel, gs.Nlink, ws.Nlink)
	}
}
