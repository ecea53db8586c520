package file

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// requireQemu skips the test when qemu-img and qemu-io are not installed.
func requireQemu(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"qemu-img", "qemu-io"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not in PATH (install Debian package qemu-utils): %v", tool, err)
		}
	}
}

// run runs a command and fails the test with its output on error.
func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
}

// qemuIO writes through qemu-io, one -c per command.
func qemuIO(t *testing.T, format, path string, cmds ...string) {
	t.Helper()
	args := []string{"-f", format}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	run(t, "qemu-io", append(args, path)...)
}

// toRaw converts an image to raw with qemu-img, the reference reader.
func toRaw(t *testing.T, format, path string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ref.raw")
	run(t, "qemu-img", "convert", "-f", format, "-O", "raw", path, out)
	return out
}

func mustOpen(t *testing.T, spec string) source.Disk {
	t.Helper()
	return mustOpenWith(t, spec, Options{})
}

func mustOpenWith(t *testing.T, spec string, o Options) source.Disk {
	t.Helper()
	d, err := Open(context.Background(), spec, o)
	if err != nil {
		t.Fatalf("Open(%q): %v", spec, err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// compareWithFile checks that d reads exactly like the reference raw file,
// both in one large read per MiB and in odd-sized reads that straddle
// clusters, and that everything outside Allocated reads as zeros.
func compareWithFile(t *testing.T, d source.Disk, refPath string) []source.Extent {
	t.Helper()
	ref, err := os.Open(refPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	st, _ := ref.Stat()
	if d.Size() != st.Size() {
		t.Fatalf("Size = %d, reference has %d bytes", d.Size(), st.Size())
	}
	alloc, err := d.Allocated(context.Background())
	if err != nil {
		t.Fatalf("Allocated: %v", err)
	}
	checkExtents(t, alloc, d.Size())
	// The reference's holes need not be read: they must read as zeros.
	var refData extentList
	err = dataRanges(context.Background(), ref, 0, st.Size(), func(off, n int64) { refData.add(ext(off, n)) })
	if err != nil {
		t.Fatal(err)
	}
	compareChunks(t, d, ref, 4<<20, alloc, refData.extents)
	if d.Size() <= 256<<20 { // reads straddling clusters and grains
		compareChunks(t, d, ref, 100_003, alloc, refData.extents)
	}
	return alloc
}

func compareChunks(t *testing.T, d source.Disk, ref io.ReaderAt, chunk int64, alloc, refData []source.Extent) {
	t.Helper()
	got, want := make([]byte, chunk), make([]byte, chunk)
	for i, off := 0, int64(0); off < d.Size(); i, off = i+1, off+chunk {
		n := min(chunk, d.Size()-off)
		if d.Size() > 256<<20 && i%64 != 0 && !overlaps(alloc, ext(off, n)) && !overlaps(refData, ext(off, n)) {
			continue // large image: sample the holes
		}
		if _, err := d.ReadAt(got[:n], off); err != nil {
			t.Fatalf("ReadAt(%d bytes at %d): %v", n, off, err)
		}
		if !overlaps(refData, ext(off, n)) {
			clear(want[:n])
		} else if _, err := ref.ReadAt(want[:n], off); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:n], want[:n]) {
			t.Fatalf("bytes at [%d,%d) differ from the reference", off, off+n)
		}
		checkZerosOutside(t, got[:n], off, alloc)
	}
}

// checkZerosOutside fails if p, read at off, has non-zero bytes outside the
// allocated extents.
func checkZerosOutside(t *testing.T, p []byte, off int64, alloc []source.Extent) {
	t.Helper()
	pos, end := off, off+int64(len(p))
	for _, a := range append(alloc, source.Extent{Offset: end}) {
		if a.End() <= pos {
			continue
		}
		gapEnd := min(a.Offset, end)
		if gapEnd > pos {
			if !isZero(p[pos-off : gapEnd-off]) {
				t.Fatalf("non-zero bytes in [%d,%d) outside Allocated %v", pos, gapEnd, alloc)
			}
		}
		if pos = a.End(); pos >= end {
			return
		}
	}
}

// checkExtents verifies that extents are sorted, coalesced and in bounds.
func checkExtents(t *testing.T, alloc []source.Extent, size int64) {
	t.Helper()
	for i, e := range alloc {
		if e.Length <= 0 || e.Offset < 0 || e.End() > size {
			t.Fatalf("extent %d %+v invalid for size %d", i, e, size)
		}
		if i > 0 && alloc[i-1].End() >= e.Offset {
			t.Fatalf("extents %d and %d not sorted/coalesced: %v", i-1, i, alloc)
		}
	}
}

// covered reports whether e lies within the union of alloc.
func covered(alloc []source.Extent, e source.Extent) bool {
	for _, a := range alloc {
		if a.Offset <= e.Offset && e.End() <= a.End() {
			return true
		}
	}
	return false
}

// overlaps reports whether e intersects alloc.
func overlaps(alloc []source.Extent, e source.Extent) bool {
	for _, a := range alloc {
		if a.Offset < e.End() && e.Offset < a.End() {
			return true
		}
	}
	return false
}

func checkCoverage(t *testing.T, alloc []source.Extent, data, holes []source.Extent) {
	t.Helper()
	for _, e := range data {
		if !covered(alloc, e) {
			t.Errorf("written range %+v not in Allocated %v", e, alloc)
		}
	}
	for _, e := range holes {
		if overlaps(alloc, e) {
			t.Errorf("unwritten range %+v in Allocated %v", e, alloc)
		}
	}
}

func ext(off, length int64) source.Extent { return source.Extent{Offset: off, Length: length} }

const (
	kiB = int64(1) << 10
	miB = int64(1) << 20
)

func sz(n int64) string { return fmt.Sprint(n) }

var zeros = make([]byte, 64<<10)

func isZero(p []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(zeros))
		if !bytes.Equal(p[:n], zeros[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}
