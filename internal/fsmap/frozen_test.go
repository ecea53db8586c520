package fsmap

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// copyFile copies src to a new file and returns its path.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(t.TempDir(), "copy.img")
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestFrozenInUse: a mounted file system's image, copied while frozen (as
// a backup's snapshot after a guest-agent freeze), has its free space
// read exactly; copied while in use, it is kept whole.
func TestFrozenInUse(t *testing.T) {
	type fsKind struct {
		name  string
		make  func(t *testing.T) string
		free  func(context.Context, io.ReaderAt, int64) ([]Range, error)
		truth func(t testing.TB, img string) []Range
	}
	kinds := []fsKind{
		{"ext4", func(t *testing.T) string { return extImage(t, 64, "mkfs.ext4") }, ext4Free,
			func(t testing.TB, img string) []Range { return dumpe2fsFree(t, img, 0) }},
		{"xfs", func(t *testing.T) string { return xfsImage(t, 320, "") }, xfsFree, xfsdbFree},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			need(t, "fsfreeze")
			img := k.make(t)
			var frozen, inUse string
			mountedChange(t, img, func(dir string) {
				if err := os.Remove(filepath.Join(dir, "f3")); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "new"), make([]byte, 1<<20), 0o644); err != nil {
					t.Fatal(err)
				}
				sh(t, "sync")
				sh(t, "fsfreeze", "-f", dir)
				frozen = copyFile(t, img)
				sh(t, "fsfreeze", "-u", dir)
				if err := os.Remove(filepath.Join(dir, "f1")); err != nil {
					t.Fatal(err)
				}
				sh(t, "sync")
				inUse = copyFile(t, img)
			})
			f, size := openImage(t, frozen)
			got, err := k.free(context.Background(), f, size)
			if err != nil {
				t.Fatalf("frozen: %v", err)
			}
			if want := k.truth(t, frozen); !reflect.DeepEqual(normalize(got, size), want) {
				t.Fatalf("frozen: %d free bytes, the tools say %d", sum(got), sum(want))
			}
			f, size = openImage(t, inUse)
			if got, err := k.free(context.Background(), f, size); err == nil || !strings.Contains(err.Error(), "not frozen") {
				t.Fatalf("in use: %d ranges, error %v; want a refusal", len(got), err)
			}
		})
	}
}
