package guestfiles

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/guestfs"
	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

// One damaged inode does not cost the rest of the tree: it is skipped with
// a warning, everything else is restored, and Restore ends with
// ErrCorrupt (exit 1).
func TestRestoreSkipsDamagedEntries(t *testing.T) {
	guesttree.Tool(t, "debugfs")
	src := t.TempDir()
	for name, data := range map[string]string{"a.txt": "a", "bad.txt": "bad", "z/z.txt": "z"} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := guesttree.Ext4(t, src, 16)
	guesttree.Run(t, nil, "debugfs", "-w", "-R", "sif /bad.txt block[0] 0", img) // no extent header
	tr := openTree(t, img)
	dest := t.TempDir()
	var warnings []string
	res, err := Restore(context.Background(), tr.Single().FS, []string{"/"}, dest, RestoreOptions{Warn: func(s string) { warnings = append(warnings, s) }})
	if !errors.Is(err, guestfs.ErrCorrupt) || res.Damaged != 1 {
		t.Fatalf("restore: %v, result %+v", err, res)
	}
	for name, want := range map[string]string{"a.txt": "a", "z/z.txt": "z"} {
		if b, err := os.ReadFile(filepath.Join(dest, name)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "bad.txt") {
		t.Errorf("warnings %q", warnings)
	}
}
