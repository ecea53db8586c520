package file

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// writeSparse creates a file of size bytes with the given data written at
// offsets, holes elsewhere.
func writeSparse(t *testing.T, path string, size int64, writes map[int64][]byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for off, p := range writes {
		if _, err := f.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRawSparseFile(t *testing.T) {
	const size = 64 * miB
	tests := []struct {
		name   string
		writes map[int64][]byte
		holes  []source.Extent
	}{
		{name: "empty", holes: []source.Extent{ext(0, size)}},
		{
			name: "scattered",
			writes: map[int64][]byte{
				0:             bytes.Repeat([]byte{1}, 4096),
				10 * miB:      bytes.Repeat([]byte{2}, 100*1024),
				size - 4*kiB:  bytes.Repeat([]byte{3}, 4096),
				33*miB + 1234: []byte("unaligned"),
			},
			holes: []source.Extent{ext(1*miB, 8*miB), ext(12*miB, 20*miB), ext(35*miB, 28*miB)},
		},
		{name: "full", writes: map[int64][]byte{0: bytes.Repeat([]byte{7}, int(size))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk.img")
			writeSparse(t, path, size, tt.writes)
			d := mustOpen(t, path)
			if got := d.Describe(); got != (source.Info{Format: "raw", Location: path}) {
				t.Errorf("Describe = %+v", got)
			}
			alloc := compareWithFile(t, d, path)
			var data []source.Extent
			for off, p := range tt.writes {
				data = append(data, ext(off, int64(len(p))))
			}
			if len(tt.holes) > 0 && len(alloc) == 1 && alloc[0] == ext(0, size) {
				t.Skip("file system does not report holes")
			}
			checkCoverage(t, alloc, data, tt.holes)
		})
	}
}

func TestRawReadAtEOF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	content := []byte("0123456789")
	if err := os.WriteFile(path, content, 0o600); err != nil {
		t.Fatal(err)
	}
	d := mustOpen(t, path)
	tests := []struct {
		off, len, wantN int
		wantErr         error
	}{
		{off: 0, len: 10, wantN: 10},
		{off: 5, len: 5, wantN: 5},
		{off: 5, len: 10, wantN: 5, wantErr: io.EOF},
		{off: 10, len: 1, wantN: 0, wantErr: io.EOF},
		{off: 20, len: 1, wantN: 0, wantErr: io.EOF},
		{off: 3, len: 0, wantN: 0},
	}
	for _, tt := range tests {
		p := make([]byte, tt.len)
		n, err := d.ReadAt(p, int64(tt.off))
		if n != tt.wantN || !errors.Is(err, tt.wantErr) && err != tt.wantErr {
			t.Errorf("ReadAt(%d bytes at %d) = %d, %v; want %d, %v", tt.len, tt.off, n, err, tt.wantN, tt.wantErr)
		}
		if n > 0 && !bytes.Equal(p[:n], content[tt.off:tt.off+n]) {
			t.Errorf("ReadAt(%d bytes at %d) read %q", tt.len, tt.off, p[:n])
		}
	}
	if _, err := d.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("ReadAt at -1 succeeded")
	}
}

func TestRawFileURL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "my vm #1")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "disk%.img")
	writeSparse(t, path, miB, map[int64][]byte{4096: []byte("hello")})
	spec := (&url.URL{Scheme: "file", Path: path}).String()
	d := mustOpen(t, spec)
	if d.Describe().Location != path || d.Size() != miB {
		t.Fatalf("Open(%q): location %q size %d", spec, d.Describe().Location, d.Size())
	}
	compareWithFile(t, d, path)
}

func TestRawEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.img")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	d := mustOpen(t, path)
	alloc, err := d.Allocated(context.Background())
	if d.Size() != 0 || len(alloc) != 0 || err != nil {
		t.Fatalf("Size %d, Allocated %v, %v", d.Size(), alloc, err)
	}
}

// A raw image that starts like a VMDK descriptor but is too large to be one
// (a guest wrote that text at sector 0) is read as raw.
func TestRawLooksLikeDescriptor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	writeSparse(t, path, 2*maxDescriptorSize, map[int64][]byte{
		0: []byte(descriptorMagic + "\nRW 8 FLAT \"/etc/passwd\" 0\n"),
	})
	d := mustOpen(t, path)
	if d.Describe().Format != "raw" {
		t.Fatalf("Format = %q, want raw", d.Describe().Format)
	}
}

func TestAllocatedCanceled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.img")
	writeSparse(t, path, miB, map[int64][]byte{0: []byte("x")})
	d := mustOpen(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := d.Allocated(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Allocated = %v, want context.Canceled", err)
	}
}
