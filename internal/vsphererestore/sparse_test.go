package vsphererestore

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
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

// hugeDisk is a large virtual disk that holds data only in a few pieces
// (and says so through Allocated), as a thin disk does.
type hugeDisk struct {
	size   int64
	pieces map[int64][]byte // chunk-aligned offset → data
}

func (d *hugeDisk) ReadAt(p []byte, off int64) (int, error) {
	clear(p)
	for at, b := range d.pieces {
		lo, hi := max(off, at), min(off+int64(len(p)), at+int64(len(b)))
		if lo < hi {
			copy(p[lo-off:hi-off], b[lo-at:hi-at])
		}
	}
	if off+int64(len(p)) > d.size {
		return int(max(d.size-off, 0)), io.EOF
	}
	return len(p), nil
}

func (d *hugeDisk) Close() error { return nil }
func (d *hugeDisk) Size() int64  { return d.size }
func (d *hugeDisk) Allocated(context.Context) ([]source.Extent, error) {
	var out []source.Extent
	for at, b := range d.pieces {
		out = append(out, source.Extent{Offset: at, Length: int64(len(b))})
	}
	slices.SortFunc(out, func(a, b source.Extent) int { return cmp.Compare(a.Offset, b.Offset) })
	return out, nil
}
func (d *hugeDisk) Describe() source.Info { return source.Info{Format: "raw", Location: "huge"} }

// TestSparseImageHugeDisk: a 64 GiB disk holding 768 KiB streams as a
// sparse extent of about that size (the metadata grows with the data, not
// with the disk), and reads back where it holds data and where it does not.
func TestSparseImageHugeDisk(t *testing.T) {
	const size = 64 << 30
	d := &hugeDisk{size: size, pieces: map[int64][]byte{
		0: diskData(2*cs, 21)[:cs], 17 << 30: diskData(2*cs, 22)[:cs], size - cs: diskData(2*cs, 23)[:cs]}}
	for _, b := range d.pieces {
		b[len(b)-1] = 1 // no zero tails
	}
	r := testrepo.New(t, nil)
	m, err := pipeline.BackupPoint(context.Background(), r, pipeline.PointRequest{VM: "huge", Disks: []source.Disk{d}, ChunkSize: cs}, pipeline.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rd, err := restorefs.OpenDisk(context.Background(), r, m, 0, restorefs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	desc, err := descriptor(size, "huge.vmdk", "pvscsi", true, "", true)
	if err != nil {
		t.Fatal(err)
	}
	img, err := newSparseImage(rd, desc)
	if err != nil {
		t.Fatal(err)
	}
	// 2048 grain directory entries (8 KiB), 3 grain tables, 12 grains.
	if want := int64(128*sectorSize + 12*grainBytes); img.Len() != want {
		t.Errorf("sparse extent of %d bytes, want %d", img.Len(), want)
	}
	path := filepath.Join(t.TempDir(), "huge.vmdk")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := img.WriteTo(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := file.Open(context.Background(), path, file.Options{Format: file.FormatVMDK})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Size() != size {
		t.Fatalf("size %d", got.Size())
	}
	buf := make([]byte, cs)
	for _, at := range []int64{0, 17 << 30, size - cs, 1 << 30, 40 << 30} {
		want := make([]byte, cs)
		_, _ = d.ReadAt(want, at)
		if _, err := got.ReadAt(buf, at); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(buf, want) {
			t.Errorf("offset %d differs", at)
		}
	}
}
