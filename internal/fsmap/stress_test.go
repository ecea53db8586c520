package fsmap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestFragmentedMatchesTools fragments the free space of mounted ext4
// and xfs file systems (thousands of files, every other one deleted:
// multi-level bnobts, hundreds of bitmap runs per group) and compares
// with dumpe2fs and xfs_db.
func TestFragmentedMatchesTools(t *testing.T) {
	if testing.Short() {
		t.Skip("fragments two file systems")
	}
	fragment := func(dir string) {
		for d := range 2 {
			sub := filepath.Join(dir, fmt.Sprint("d", d))
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := range 1500 {
				if err := os.WriteFile(filepath.Join(sub, fmt.Sprint(i)), make([]byte, 4096*(1+i%3)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			sh(t, "sync") // allocate before deleting (delayed allocation)
			for i := 0; i < 1500; i += 2 {
				_ = os.Remove(filepath.Join(sub, fmt.Sprint(i)))
			}
		}
	}
	t.Run("ext4", func(t *testing.T) {
		img := extImage(t, 512, "mkfs.ext4 -b 4096", "f1")
		mountedChange(t, img, fragment)
		f, size := openImage(t, img)
		got, err := ext4Free(context.Background(), f, size)
		if err != nil {
			t.Fatal(err)
		}
		want := dumpe2fsFree(t, img, 0)
		if got = normalize(got, size); !reflect.DeepEqual(got, want) || len(want) < 1000 {
			t.Fatalf("got %d ranges (%d bytes), dumpe2fs %d (%d bytes)", len(got), sum(got), len(want), sum(want))
		}
	})
	t.Run("xfs", func(t *testing.T) {
		img := xfsImage(t, 320, "")
		mountedChange(t, img, fragment)
		f, size := openImage(t, img)
		got, err := xfsFree(context.Background(), f, size)
		if err != nil {
			t.Fatal(err)
		}
		want := xfsdbFree(t, img)
		if got = normalize(got, size); !reflect.DeepEqual(got, want) || len(want) < 1000 {
			t.Fatalf("got %d ranges (%d bytes), xfs_db %d (%d bytes)", len(got), sum(got), len(want), sum(want))
		}
		levels := sh(t, "xfs_db", "-r", "-c", "agf 0", "-c", "p bnolevel", "-c", "agf 1", "-c", "p bnolevel", img)
		t.Logf("bnobt levels: %s", levels)
	})
}
