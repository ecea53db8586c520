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
	const files, blocks = 5, guesttree.SharedExt4Blocks
	img := guesttree.SharedExt4(t, files)
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
