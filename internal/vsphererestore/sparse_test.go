package vsphererestore

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source/file"
)

// readVMDK reads a VMDK image through Holdfast's own VMDK reader and,
// when qemu-img is installed, through qemu's too, and checks both give
// want.
func readVMDK(t *testing.T, path string, want []byte) {
	t.Helper()
	d, err := file.Open(context.Background(), path, file.Options{Format: file.FormatVMDK})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer d.Close()
	got := make([]byte, d.Size())
	if _, err := io.ReadFull(io.NewSectionReader(d, 0, d.Size()), got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s reads %d bytes differing from the point's %d", path, len(got), len(want))
	}
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Log("qemu-img not installed: the image is checked with Holdfast's reader only")
		return
	}
	raw := filepath.Join(t.TempDir(), "raw")
	if out, err := exec.Command("qemu-img", "convert", "-f", "vmdk", "-O", "raw", path, raw).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v: %s", err, out)
	}
	if b, err := os.ReadFile(raw); err != nil || !bytes.Equal(b, want) {
		t.Errorf("qemu-img reads %s differently from the point (%v)", path, err)
	}
}

// TestSparseImage: the streamed monolithicSparse extent reads back as the
// point (through two readers), leaves the zero chunks out, and is exactly
// as long as announced; a disk whose end is not on a grain boundary and
// one of zeros only work too.
func TestSparseImage(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		files int64 // want the file's size
	}{
		// 40 chunks of 256 KiB + 1.5 KiB; chunks 1, 31–39 and the tail are
		// zero: 30 data chunks of 4 grains, the tail's zero grain left out.
		{"data and zeros", diskData(40*cs+3*512, 8), (128 + 30*4*grainSectors) * sectorSize},
		{"zeros only", make([]byte, 10*cs), 128 * sectorSize},
		{"odd tail", diskData(2*cs+5*512, 9)[:2*cs+5*512], -1},
	}
	tests[2].data[len(tests[2].data)-1] = 7 // the tail holds data
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, disks := point(t, testConfig(), tc.data)
			desc, err := descriptor(int64(len(tc.data)), "d.vmdk", "pvscsi", true, "vmx-19", true)
			if err != nil {
				t.Fatal(err)
			}
			img, err := newSparseImage(disks[0], desc)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "d.vmdk")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			r := img.reader(context.Background())
			n, err := io.Copy(f, r)
			r.Close()
			f.Close()
			if err != nil || n != img.Len() {
				t.Fatalf("streamed %d bytes (%v), announced %d", n, err, img.Len())
			}
			if tc.files >= 0 && n != tc.files {
				t.Errorf("file of %d bytes, want %d", n, tc.files)
			}
			readVMDK(t, path, tc.data)
		})
	}
}
