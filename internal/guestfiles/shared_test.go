package guestfiles

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/guesttree"
)

// Five files whose one extent each is (almost) the whole 8 MiB volume:
// legal one by one, but together five volumes of data. Restore writes four
// (4 × the volume) and names the fifth; AllowShared writes all five.
func TestRestoreBoundsSharedData(t *testing.T) {
	guesttree.Tool(t, "debugfs")
	src := t.TempDir()
	const files, blocks = 5, 2040 // blocks 1–2040 of the volume's 2048
	var req strings.Builder
	for i := range files {
		name := fmt.Sprintf("f%d", i)
		if err := os.WriteFile(filepath.Join(src, name), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		// an extent header with one entry, then file block 0 → blocks blocks from block 1
		for _, r := range []string{"size " + fmt.Sprint(blocks*4096), "block[0] 0x0001F30A", "block[1] 4", "block[2] 0",
			"block[3] 0", "block[4] " + fmt.Sprint(blocks), "block[5] 1", "flags 0x80000"} {
			fmt.Fprintf(&req, "sif /%s %s\n", name, r)
		}
	}
	img := guesttree.Ext4(t, src, 8, "-O", "^has_journal")
	guesttree.Run(t, strings.NewReader(req.String()), "debugfs", "-w", "-f", "-", img)
	v := openTree(t, img).Single()
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow=%v", allow), func(t *testing.T) {
			dest := t.TempDir()
			var warnings []string
			res, err := Restore(context.Background(), v.FS, []string{"/"}, dest, RestoreOptions{AllowShared: allow, Volume: "disk0",
				Warn: func(s string) { warnings = append(warnings, s) }})
			written := 0
			for i := range files {
				if st, err := os.Stat(filepath.Join(dest, fmt.Sprintf("f%d", i))); err == nil && st.Size() == blocks*4096 {
					written++
				}
			}
			if allow {
				if err != nil || written != files || res.Bytes != files*blocks*4096 {
					t.Fatalf("restore: %v, %d files written, %+v", err, written, res)
				}
				return
			}
			if !errors.Is(err, ErrSharedData) || res.SharedRefused != 1 || written != SharedFactor || res.Bytes != SharedFactor*blocks*4096 {
				t.Fatalf("restore: %v, %d files written, %+v", err, written, res)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], "disk0:/f4: not restored") || !strings.Contains(warnings[0], "--allow-shared-extents") {
				t.Fatalf("warnings %q", warnings)
			}
		})
	}
}
