package file

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// memFiles serves VMDK files from memory, as a datastore over HTTPS would,
// and records every name asked for.
type memFiles struct {
	files  map[string][]byte
	opened []string
}

type memFile struct{ *bytes.Reader }

func (memFile) Close() error { return nil }

func (m *memFiles) OpenFile(_ context.Context, name string) (ExtentFile, error) {
	m.opened = append(m.opened, name)
	b, ok := m.files[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return memFile{bytes.NewReader(b)}, nil
}

func descriptor(extents ...string) []byte {
	return []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"vmfs\"\n\n" +
		strings.Join(extents, "\n") + "\n")
}

func TestOpenVMDKFiles(t *testing.T) {
	flat := bytes.Repeat([]byte{0xab}, 2*sectorSize)
	flat = append(flat, bytes.Repeat([]byte{0xcd}, 2*sectorSize)...)
	tests := []struct {
		name   string
		files  map[string][]byte
		open   string
		want   []byte // nil: an error containing inErr
		inErr  string
		format string
	}{
		{name: "flat", open: "d.vmdk", format: "vmdk-flat", want: flat,
			files: map[string][]byte{"d.vmdk": descriptor(`RW 4 VMFS "d-flat.vmdk"`), "d-flat.vmdk": flat}},
		{name: "flat with zero extent", open: "d.vmdk", format: "vmdk-flat",
			want:  append(append([]byte{}, flat[:2*sectorSize]...), make([]byte, 2*sectorSize)...),
			files: map[string][]byte{"d.vmdk": descriptor(`RW 2 FLAT "d-flat.vmdk" 0`, `RW 2 ZERO`), "d-flat.vmdk": flat}},
		{name: "extent offset", open: "d.vmdk", format: "vmdk-flat", want: flat[2*sectorSize:],
			files: map[string][]byte{"d.vmdk": descriptor(`RW 2 FLAT "d-flat.vmdk" 2`), "d-flat.vmdk": flat}},
		{name: "escaping extent", open: "d.vmdk", inErr: "leaves the VMDK's directory",
			files: map[string][]byte{"d.vmdk": descriptor(`RW 8 VMFS "../other/d-flat.vmdk"`)}},
		{name: "absolute extent", open: "d.vmdk", inErr: "leaves the VMDK's directory",
			files: map[string][]byte{"d.vmdk": descriptor(`RW 8 VMFS "/etc/passwd"`)}},
		{name: "escaping name", open: "../d.vmdk", inErr: "leaves the VMDK's directory", files: map[string][]byte{}},
		{name: "missing extent", open: "d.vmdk", inErr: "file does not exist",
			files: map[string][]byte{"d.vmdk": descriptor(`RW 8 VMFS "d-flat.vmdk"`)}},
		{name: "short extent", open: "d.vmdk", inErr: "the extent needs 2048",
			files: map[string][]byte{"d.vmdk": descriptor(`RW 4 VMFS "d-flat.vmdk"`), "d-flat.vmdk": flat[:100]}},
		{name: "parent", open: "d.vmdk", inErr: "parent",
			files: map[string][]byte{"d.vmdk": []byte("# Disk DescriptorFile\nversion=1\nparentCID=12345678\nparentFileNameHint=\"base.vmdk\"\ncreateType=\"vmfsSparse\"\nRW 8 VMFSSPARSE \"d-delta.vmdk\"\n")}},
		{name: "not a vmdk", open: "d.vmdk", inErr: "neither a VMDK descriptor nor a sparse VMDK",
			files: map[string][]byte{"d.vmdk": flat}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := &memFiles{files: tc.files}
			d, err := OpenVMDK(context.Background(), files, tc.open, "[ds] vm/"+tc.open)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), tc.inErr) {
					t.Fatalf("error %v, want %q", err, tc.inErr)
				}
				for _, n := range files.opened {
					if !filepath.IsLocal(n) {
						t.Errorf("asked for %q", n)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if d.Size() != int64(len(tc.want)) || d.Describe().Format != tc.format || d.Describe().Location != "[ds] vm/"+tc.open {
				t.Errorf("size %d info %+v", d.Size(), d.Describe())
			}
			got := make([]byte, len(tc.want))
			if _, err := d.ReadAt(got, 0); err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("content differs (%v)", err)
			}
		})
	}
}

// TestOpenVMDKSparseFiles reads a monolithicSparse image qemu-img made
// through the VMDKFiles interface.
func TestOpenVMDKSparseFiles(t *testing.T) {
	requireQemu(t)
	path := filepath.Join(t.TempDir(), "disk.vmdk")
	run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicSparse", path, "8M")
	qemuIO(t, "vmdk", path, "write -P 0xab 1M 64k", "write -P 0xcd 7M 4k")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenVMDK(context.Background(), &memFiles{files: map[string][]byte{"disk.vmdk": b}}, "disk.vmdk", "mem")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Describe().Format != "vmdk-sparse" {
		t.Errorf("format %s", d.Describe().Format)
	}
	compareWithFile(t, d, toRaw(t, "vmdk", path))
}
