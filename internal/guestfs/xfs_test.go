package guestfs

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

// xfsTree is the shared tree plus what exercises each xfs directory and
// file format: a 2,000-entry directory (node form), a 60-entry one (block
// form), small ones (short form) and a file of 600 extents (btree form).
func xfsTree(t *testing.T) string {
	src := guesttree.Build(t, t.TempDir(), guesttree.Options{BigDir: 2000})
	for i := range 60 {
		p := filepath.Join(src, "mid", fmt.Sprintf("entry-%02d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Create(filepath.Join(src, "frag.bin"))
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 4096)
	for i := range 600 {
		for j := range block {
			block[j] = byte(i + j)
		}
		if _, err := f.WriteAt(block, int64(i)*8192); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	guesttree.SetTimes(t, src)
	return src
}

func TestXFSMounted(t *testing.T) {
	src := xfsTree(t)
	fsImg := guesttree.XFSMounted(t, src)
	img := guesttree.Disk(t, 400, "label: gpt\nstart=2048, size=620000, type=linux\n", map[int64]string{2048 * 512: fsImg})
	fsys := openVolume(t, img, 1)
	if fsys.Content() != "xfs" {
		t.Fatalf("content %q", fsys.Content())
	}
	checkTree(t, fsys, src, allChecks)
	exts, err := fsys.Extents("frag.bin")
	if err != nil || len(exts) != 600 {
		t.Errorf("frag.bin: %d extents (%v), want 600 (a btree fork)", len(exts), err)
	}
}

func TestXFSProto(t *testing.T) {
	src := guesttree.Build(t, t.TempDir(), guesttree.Options{BigDir: 700, NoSparse: true})
	if err := os.Chmod(filepath.Join(src, "sticky"), 0o777); err != nil { // a proto file has no sticky bit
		t.Fatal(err)
	}
	for _, v := range []struct {
		name string
		opts []string
	}{{"v5", nil}, {"v4", []string{"-m", "crc=0"}}, {"8k-dir-blocks", []string{"-n", "size=8192"}}} {
		t.Run(v.name, func(t *testing.T) {
			img := guesttree.XFSProto(t, src, v.opts...)
			fsys := openVolume(t, img, 0)
			checkTree(t, fsys, src, checks{})
		})
	}
}
