package file

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

func TestVMDKQemu(t *testing.T) {
	requireQemu(t)
	tests := []struct {
		name, subformat, format string
		size                    int64
		writes                  []string
		data, holes             []source.Extent
	}{
		{
			name: "monolithicSparse", subformat: "monolithicSparse", format: "vmdk-sparse", size: 64 * miB,
			writes: []string{"write -P 0xab 1M 64k", "write -P 0xcd 5M 1M", "write -P 0xef 63M 4k", "write -P 0x01 100 1000"},
			data:   []source.Extent{ext(miB, 64*kiB), ext(5*miB, miB), ext(63*miB, 4*kiB), ext(100, 1000)},
			holes:  []source.Extent{ext(64*kiB, miB-64*kiB), ext(2*miB, 3*miB), ext(7*miB, 56*miB)},
		},
		{name: "monolithicSparse empty", subformat: "monolithicSparse", format: "vmdk-sparse", size: 8 * miB,
			holes: []source.Extent{ext(0, 8*miB)}},
		{
			name: "monolithicFlat", subformat: "monolithicFlat", format: "vmdk-flat", size: 64 * miB,
			writes: []string{"write -P 0xab 1M 64k", "write -P 0xcd 40M 1M"},
			data:   []source.Extent{ext(miB, 64*kiB), ext(40*miB, miB)},
			holes:  []source.Extent{ext(2*miB, 30*miB)},
		},
		{
			name: "twoGbMaxExtentSparse", subformat: "twoGbMaxExtentSparse", format: "vmdk-sparse", size: 5 * 1024 * miB,
			writes: []string{"write -P 0xab 1M 64k", "write -P 0xcd 2047M 2M", "write -P 0x12 5119M 1M"},
			data:   []source.Extent{ext(miB, 64*kiB), ext(2047*miB, 2*miB), ext(5119*miB, miB)},
			holes:  []source.Extent{ext(2*miB, 2040*miB), ext(2050*miB, 3000*miB)},
		},
		{
			name: "twoGbMaxExtentFlat", subformat: "twoGbMaxExtentFlat", format: "vmdk-flat", size: 3 * 1024 * miB,
			writes: []string{"write -P 0xab 1M 64k", "write -P 0xcd 2047M 2M"},
			data:   []source.Extent{ext(miB, 64*kiB), ext(2047*miB, 2*miB)},
			holes:  []source.Extent{ext(2*miB, 2040*miB), ext(2050*miB, 1000*miB)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "disk.vmdk")
			run(t, "qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat="+tt.subformat, path, sz(tt.size))
			if len(tt.writes) > 0 {
				qemuIO(t, "vmdk", path, tt.writes...)
			}
			// Only a monolithicSparse image is self-contained; the other
			// subformats are descriptors naming extent files, which are
			// read only when the format is given.
			o := Options{Format: FormatVMDK}
			if tt.subformat == "monolithicSparse" {
				o = Options{}
			}
			d := mustOpenWith(t, path, o)
			if got := d.Describe(); got != (source.Info{Format: tt.format, Location: path}) {
				t.Errorf("Describe = %+v", got)
			}
			alloc := compareWithFile(t, d, toRaw(t, "vmdk", path))
			checkCoverage(t, alloc, tt.data, tt.holes)
		})
	}
}

// TestVMDKDescriptor opens hand-written descriptors over a data file whose
// byte i is byte(i/512) (the sector number).
func TestVMDKDescriptor(t *testing.T) {
	tests := []struct {
		name, extents string
		want          func(off int64) byte // expected byte at virtual offset off
		size          int64
		wantFormat    string
		wantInErr     string
	}{
		{
			name:    "flat with offset, zero, flat",
			extents: "RW 16 FLAT \"data.bin\" 8\nRW 32 ZERO\nRDONLY 8 FLAT \"data.bin\"\n",
			size:    56 * 512, wantFormat: "vmdk-flat",
			want: func(off int64) byte {
				switch s := off / 512; {
				case s < 16:
					return byte(s + 8)
				case s < 48:
					return 0
				default:
					return byte(s - 48)
				}
			},
		},
		{
			name: "VMFS extent, tabs, CRLF", extents: "RW\t8\tVMFS\t\"data.bin\"\t0\r\nddb.adapterType = \"lsilogic\"\r\n",
			size: 8 * 512, wantFormat: "vmdk-flat", want: func(off int64) byte { return byte(off / 512) },
		},
		{name: "extent file too short", extents: "RW 100 FLAT \"data.bin\" 0\n", wantInErr: "the extent needs"},
		{name: "missing extent file", extents: "RW 8 FLAT \"nope.bin\" 0\n", wantInErr: "nope.bin"},
		{name: "no extents", extents: "", wantInErr: "no extents"},
		{name: "unsupported type", extents: "RW 8 VMFSSPARSE \"data.bin\"\n", wantInErr: "VMFSSPARSE not supported"},
		{name: "noaccess", extents: "NOACCESS 8 FLAT \"data.bin\" 0\n", wantInErr: "NOACCESS"},
		{name: "bad size", extents: "RW -8 FLAT \"data.bin\" 0\n", wantInErr: "invalid size"},
		{name: "unterminated quote", extents: "RW 8 FLAT \"data.bin 0\n", wantInErr: "unterminated"},
		{name: "parent", extents: "parentCID=12345678\nRW 8 FLAT \"data.bin\" 0\n", wantInErr: "parentCID=12345678"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			data := make([]byte, 24*512)
			for i := range data {
				data[i] = byte(i / 512)
			}
			writeFile(t, filepath.Join(dir, "data.bin"), data)
			path := filepath.Join(dir, "disk.vmdk")
			writeFile(t, path, []byte(descriptorText("monolithicFlat", tt.extents)))
			d, err := Open(context.Background(), path, Options{Format: FormatVMDK})
			if tt.wantInErr != "" {
				if err == nil {
					d.Close()
					t.Fatal("Open succeeded")
				}
				if !strings.Contains(err.Error(), tt.wantInErr) || errors.Is(err, source.ErrNotFound) {
					t.Fatalf("Open = %v, want an error containing %q (not ErrNotFound)", err, tt.wantInErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			checkDescriptorDisk(t, d, tt.size, tt.wantFormat, tt.want)
		})
	}
}

func checkDescriptorDisk(t *testing.T, d source.Disk, size int64, format string, want func(int64) byte) {
	t.Helper()
	if d.Size() != size || d.Describe().Format != format {
		t.Fatalf("Size %d, Format %q; want %d, %q", d.Size(), d.Describe().Format, size, format)
	}
	got := make([]byte, size)
	if _, err := d.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		if b != want(int64(i)) {
			t.Fatalf("byte %d = %d, want %d", i, b, want(int64(i)))
		}
	}
	alloc, err := d.Allocated(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	checkExtents(t, alloc, size)
	checkZerosOutside(t, got, 0, alloc)
}

func descriptorText(createType, extents string) string {
	return "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType=\"" +
		createType + "\"\n\n# Extent description\n" + extents + "\n# The Disk Data Base\n#DDB\n"
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// sparseImage describes a hosted sparse extent built by buildSparse.
type sparseImage struct {
	capacity   uint64 // sectors
	grainSize  uint64 // sectors
	gtes       uint32
	grains     map[int64]byte // grain number -> fill byte; 0 writes a zeroed-grain GTE
	descriptor string
}

// buildSparse lays out header, descriptor, grain directory, grain tables
// and grains, as VMware and qemu do.
func buildSparse(s sparseImage) []byte {
	le := binary.LittleEndian
	span := uint64(s.gtes) * s.grainSize
	numGTs := (s.capacity + span - 1) / span
	descSectors := uint64(len(s.descriptor)+511) / 512
	gdOffset := 1 + descSectors
	gdSectors := (numGTs*4 + 511) / 512
	gtSectors := (uint64(s.gtes)*4 + 511) / 512
	next := gdOffset + gdSectors + numGTs*gtSectors // first grain sector
	img := make([]byte, next*512)
	copy(img, vmdkSparseMagic)
	le.PutUint32(img[4:], 1)
	le.PutUint32(img[8:], 3)
	le.PutUint64(img[12:], s.capacity)
	le.PutUint64(img[20:], s.grainSize)
	if descSectors > 0 {
		le.PutUint64(img[28:], 1)
		le.PutUint64(img[36:], descSectors)
		copy(img[512:], s.descriptor)
	}
	le.PutUint32(img[44:], s.gtes)
	le.PutUint64(img[56:], gdOffset)
	copy(img[73:], "\n \r\n")
	for i := range numGTs {
		le.PutUint32(img[(gdOffset*512)+i*4:], uint32(gdOffset+gdSectors+i*gtSectors))
	}
	for g := int64(0); g < int64(numGTs)*int64(s.gtes); g++ {
		fill, ok := s.grains[g]
		if !ok {
			continue
		}
		gte := uint64(1)
		if fill != 0 {
			gte = next
			img = append(img, bytes.Repeat([]byte{fill}, int(s.grainSize*512))...)
			next += s.grainSize
		}
		gt := gdOffset + gdSectors + uint64(g)/uint64(s.gtes)*gtSectors
		le.PutUint32(img[gt*512+uint64(g)%uint64(s.gtes)*4:], uint32(gte))
	}
	return img
}

func TestVMDKSparseBuilt(t *testing.T) {
	img := sparseImage{
		capacity: 4096, grainSize: 8, gtes: 16,
		grains:     map[int64]byte{0: 0xaa, 1: 0xbb, 5: 0, 100: 0xcc, 511: 0xdd},
		descriptor: descriptorText("monolithicSparse", "RW 4096 SPARSE \"disk.vmdk\"\n"),
	}
	path := filepath.Join(t.TempDir(), "disk.vmdk")
	writeFile(t, path, buildSparse(img))
	d := mustOpen(t, path)
	grain := int64(8 * 512)
	checkDescriptorDisk(t, d, 4096*512, "vmdk-sparse", func(off int64) byte {
		fill := img.grains[off/grain]
		return fill
	})
	alloc, _ := d.Allocated(context.Background())
	want := []source.Extent{ext(0, 2*grain), ext(100*grain, grain), ext(511*grain, grain)}
	if fmt.Sprint(alloc) != fmt.Sprint(want) {
		t.Errorf("Allocated = %v, want %v", alloc, want)
	}
}

func TestVMDKSparseHeaderInvalid(t *testing.T) {
	valid := buildSparse(sparseImage{capacity: 2048, grainSize: 8, gtes: 512, grains: map[int64]byte{3: 1}})
	le := binary.LittleEndian
	tests := []struct {
		name      string
		patch     func(b []byte) []byte
		wantInErr string
	}{
		{"version", func(b []byte) []byte { le.PutUint32(b[4:], 7); return b }, "version 7"},
		{"compressed flag", func(b []byte) []byte { le.PutUint32(b[8:], 1<<16); return b }, "need markers"},
		{"grain directory at end", func(b []byte) []byte { le.PutUint64(b[56:], ^uint64(0)); return b }, "no footer"},
		{"grain size not power of 2", func(b []byte) []byte { le.PutUint64(b[20:], 12); return b }, "grain size"},
		{"grain size zero", func(b []byte) []byte { le.PutUint64(b[20:], 0); return b }, "grain size"},
		{"no grain table entries", func(b []byte) []byte { le.PutUint32(b[44:], 0); return b }, "grain table entries"},
		{"huge capacity", func(b []byte) []byte { le.PutUint64(b[12:], 1<<62); return b }, "too large"},
		{"directory beyond file", func(b []byte) []byte { le.PutUint64(b[56:], 1<<40); return b }, "grain directory"},
		{"directory too large", func(b []byte) []byte { le.PutUint64(b[12:], 1<<40); return b }, "does not fit"},
		{"descriptor beyond file", func(b []byte) []byte { le.PutUint64(b[28:], 9); le.PutUint64(b[36:], 100); return b }, "descriptor"},
		{"grain table beyond file", func(b []byte) []byte { le.PutUint32(b[512:], 1<<30); return b }, "beyond end of file"},
		{"truncated header", func(b []byte) []byte { return b[:100] }, "header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.patch(bytes.Clone(valid))
			_, _, err := openSparseExtent(bytes.NewReader(b), "test.vmdk", int64(len(b)))
			if err == nil || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("openSparseExtent = %v, want error containing %q", err, tt.wantInErr)
			}
		})
	}
}

// A grain table entry pointing past the end of the file fails the read
// instead of returning short data.
func TestVMDKSparseGrainBeyondEOF(t *testing.T) {
	b := buildSparse(sparseImage{capacity: 2048, grainSize: 8, gtes: 512, grains: map[int64]byte{3: 1}})
	b = b[:len(b)-512] // truncate the last grain
	path := filepath.Join(t.TempDir(), "disk.vmdk")
	writeFile(t, path, b)
	d := mustOpen(t, path)
	_, err := d.ReadAt(make([]byte, 4096), 3*4096)
	if err == nil || !strings.Contains(err.Error(), "beyond end of file") {
		t.Fatalf("ReadAt = %v, want a beyond-end-of-file error", err)
	}
}
