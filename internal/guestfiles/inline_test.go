package guestfiles

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

// A hostile ext4 inode with inline data and a size far past it must not
// make Restore write that many zeros: the rest is a hole.
func TestRestoreInlineDataSizeIsAHole(t *testing.T) {
	guesttree.Tool(t, "debugfs")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "small"), []byte("inline bytes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := guesttree.Ext4(t, src, 16, "-O", "inline_data")
	const claimed = 256 << 20
	guesttree.Run(t, nil, "debugfs", "-w", "-R", "sif /small size 268435456", img)
	tr := openTree(t, img)
	st, err := tr.Single().FS.Lstat("small")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != claimed {
		t.Fatalf("debugfs did not set the size: %d", st.Size)
	}
	dest := t.TempDir()
	res, err := Restore(context.Background(), tr.Single().FS, []string{"small"}, dest, RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Bytes > 4096 {
		t.Errorf("wrote %d data bytes for %d inline bytes", res.Bytes, len("inline bytes\n"))
	}
	var fst syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dest, "small"), &fst); err != nil {
		t.Fatal(err)
	}
	if fst.Size != claimed || fst.Blocks*512 > 1<<20 {
		t.Errorf("restored size %d with %d bytes allocated", fst.Size, fst.Blocks*512)
	}
	b := make([]byte, 13)
	f, _ := os.Open(filepath.Join(dest, "small"))
	defer f.Close()
	if _, err := f.Read(b); err != nil || string(b) != "inline bytes\n" {
		t.Errorf("content %q %v", b, err)
	}
}
