package file

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// TestVMDKStreamOptimizedQemu converts raw images to streamOptimized with
// qemu-img and reads them back: the bytes must equal the raw source's.
func TestVMDKStreamOptimizedQemu(t *testing.T) {
	requireQemu(t)
	tests := []struct {
		name   string
		size   int64
		writes []source.Extent // random data; the rest stays zero
		text   []source.Extent // compressible data
	}{
		{name: "empty", size: 4 * miB},
		{name: "random and text", size: 16 * miB,
			writes: []source.Extent{ext(miB, 100*kiB), ext(5*miB, 64*kiB), ext(15*miB+3*kiB, 5*kiB)},
			text:   []source.Extent{ext(8*miB, 3*miB)}},
		{name: "partial last grain", size: 8*miB + 3*kiB,
			writes: []source.Extent{ext(8*miB-kiB, 4*kiB), ext(0, 512)}},
		{name: "several grain tables", size: 96 * miB, // 32 MiB per grain table
			writes: []source.Extent{ext(31*miB, 2*miB), ext(95*miB, miB)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			raw := make([]byte, tt.size)
			rng := rand.New(rand.NewPCG(1, uint64(tt.size)))
			for _, w := range tt.writes {
				for i := w.Offset; i < w.End(); i++ {
					raw[i] = byte(rng.Uint32())
				}
			}
			for _, w := range tt.text {
				copy(raw[w.Offset:w.End()], bytes.Repeat([]byte("holdfast streamOptimized "), int(w.Length/24+1)))
			}
			src := filepath.Join(dir, "src.raw")
			writeFile(t, src, raw)
			path := filepath.Join(dir, "disk.vmdk")
			run(t, "qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", src, path)
			d := mustOpen(t, path)
			if got := d.Describe(); got != (source.Info{Format: "vmdk-sparse", Location: path}) {
				t.Errorf("Describe = %+v", got)
			}
			alloc := compareWithFile(t, d, src)
			checkCoverage(t, alloc, append(tt.writes, tt.text...), nil)
		})
	}
}

// streamImage is a VMware-style streamOptimized extent: grains, then grain
// tables and directory behind markers, then footer and end-of-stream.
type streamImage struct {
	capacity, grainSize uint64 // sectors
	gtes                uint32
	grains              map[int64][]byte // grain -> content; nil writes a zeroed-grain GTE
	descriptor          string
}

// builtStream is an image built by buildStream and where its parts are.
type builtStream struct {
	img         []byte
	grainSector map[int64]int64 // the sector of each stored grain's marker
	gdSector    int64
}

func sectorPad(b []byte) []byte {
	return append(b, make([]byte, (512-len(b)%512)%512)...)
}

func metaMarker(sectors uint64, typ uint32) []byte {
	m := make([]byte, 512)
	binary.LittleEndian.PutUint64(m, sectors)
	binary.LittleEndian.PutUint32(m[12:], typ)
	return m
}

func deflate(p []byte) []byte {
	var b bytes.Buffer
	zw := zlib.NewWriter(&b)
	_, _ = zw.Write(p)
	_ = zw.Close()
	return b.Bytes()
}

func buildStream(s streamImage) builtStream {
	le := binary.LittleEndian
	header := func(gdOffset uint64) []byte {
		h := make([]byte, 512)
		copy(h, vmdkSparseMagic)
		le.PutUint32(h[4:], 3)
		le.PutUint32(h[8:], 1|4|sparseFlagCompressed|sparseFlagMarkers) // newline check, zeroed-grain GTEs
		le.PutUint64(h[12:], s.capacity)
		le.PutUint64(h[20:], s.grainSize)
		if s.descriptor != "" {
			le.PutUint64(h[28:], 1)
			le.PutUint64(h[36:], uint64(len(s.descriptor)+511)/512)
		}
		le.PutUint32(h[44:], s.gtes)
		le.PutUint64(h[56:], gdOffset)
		copy(h[73:], "\n \r\n")
		le.PutUint16(h[77:], compressDeflate)
		return h
	}
	b := builtStream{img: header(sparseGDAtEnd), grainSector: map[int64]int64{}}
	b.img = append(b.img, sectorPad([]byte(s.descriptor))...)
	span := uint64(s.gtes) * s.grainSize
	gts := make([][]uint32, (s.capacity+span-1)/span)
	keys := make([]int64, 0, len(s.grains))
	for g := range s.grains {
		keys = append(keys, g)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, g := range keys {
		gt := &gts[g/int64(s.gtes)]
		if *gt == nil {
			*gt = make([]uint32, s.gtes)
		}
		if s.grains[g] == nil {
			(*gt)[g%int64(s.gtes)] = gteZeroed
			continue
		}
		sector := int64(len(b.img) / 512)
		b.grainSector[g], (*gt)[g%int64(s.gtes)] = sector, uint32(sector)
		z := deflate(s.grains[g])
		m := make([]byte, grainMarkerSize, grainMarkerSize+len(z))
		le.PutUint64(m, uint64(g)*s.grainSize)
		le.PutUint32(m[8:], uint32(len(z)))
		b.img = append(b.img, sectorPad(append(m, z...))...)
	}
	gd := make([]byte, 4*len(gts))
	for i, gt := range gts {
		if gt == nil {
			continue
		}
		raw := make([]byte, 4*len(gt))
		for j, v := range gt {
			le.PutUint32(raw[4*j:], v)
		}
		raw = sectorPad(raw)
		b.img = append(b.img, metaMarker(uint64(len(raw)/512), 1)...)
		le.PutUint32(gd[4*i:], uint32(len(b.img)/512))
		b.img = append(b.img, raw...)
	}
	gd = sectorPad(gd)
	b.img = append(b.img, metaMarker(uint64(len(gd)/512), 2)...)
	b.gdSector = int64(len(b.img) / 512)
	b.img = append(b.img, gd...)
	b.img = append(b.img, metaMarker(1, markerFooter)...)
	b.img = append(b.img, header(uint64(b.gdSector))...)
	b.img = append(b.img, metaMarker(0, markerEndOfStream)...)
	return b
}

// streamSeed is a small VMware-style image: random, text, zeroed and
// partial grains over two grain tables.
func streamSeed() (streamImage, builtStream) {
	rng := rand.New(rand.NewPCG(7, 7))
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	s := streamImage{
		capacity: 8*18 + 3, grainSize: 8, gtes: 16,
		grains: map[int64][]byte{
			0: random, 2: bytes.Repeat([]byte("abc"), 4096/3+1)[:4096], 5: nil,
			16: bytes.Repeat([]byte{0xee}, 4096), 18: bytes.Repeat([]byte{0x11}, 3*512), // partial last grain
		},
		descriptor: descriptorText("streamOptimized", "RW 147 SPARSE \"disk.vmdk\"\n"),
	}
	return s, buildStream(s)
}

// TestVMDKStreamOptimizedFooter reads an image whose grain directory is in
// the footer, as VMware writes them; qemu-img reads it the same way.
func TestVMDKStreamOptimizedFooter(t *testing.T) {
	s, b := streamSeed()
	path := filepath.Join(t.TempDir(), "disk.vmdk")
	writeFile(t, path, b.img)
	d := mustOpen(t, path)
	grain := int64(s.grainSize * 512)
	want := make([]byte, s.capacity*512)
	for g, content := range s.grains {
		copy(want[g*grain:], content)
	}
	checkDescriptorDisk(t, d, int64(len(want)), "vmdk-sparse", func(off int64) byte { return want[off] })
	alloc, _ := d.Allocated(context.Background())
	if w := []source.Extent{ext(0, grain), ext(2*grain, grain), ext(16*grain, grain), ext(18*grain, 3*512)}; !equalExtents(alloc, w) {
		t.Errorf("Allocated = %v, want %v", alloc, w)
	}
	for _, chunk := range []int{1, 511, 4096, 5000, len(want)} { // reads within and across grains
		got := make([]byte, chunk)
		for off := 0; off < len(want); off += chunk {
			n, _ := d.ReadAt(got, int64(off))
			if !bytes.Equal(got[:n], want[off:off+n]) {
				t.Fatalf("read of %d at %d differs", chunk, off)
			}
		}
	}
	if _, err := exec.LookPath("qemu-img"); err == nil {
		ref := toRaw(t, "vmdk", path)
		compareWithFile(t, d, ref)
	}
}

func equalExtents(a, b []source.Extent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestVMDKStreamOptimizedCorrupt patches a valid image: every damage gives
// an error naming it, at open or at the read of the damaged grain.
func TestVMDKStreamOptimizedCorrupt(t *testing.T) {
	_, b := streamSeed()
	le := binary.LittleEndian
	g0 := b.grainSector[0] * 512
	footer := int64(len(b.img)) - 1024
	tests := []struct {
		name      string
		patch     func(b []byte) []byte
		wantInErr string
	}{
		{"marker for another grain", func(p []byte) []byte { le.PutUint64(p[g0:], 64); return p }, "is for sector 64"},
		{"grain table points at a marker", func(p []byte) []byte { le.PutUint32(p[g0+8:], 0); return p }, "metadata marker"},
		{"compressed size too large", func(p []byte) []byte { le.PutUint32(p[g0+8:], 1<<30); return p }, "too large or beyond end"},
		{"compressed data damaged", func(p []byte) []byte { p[g0+12+100] ^= 0xff; return p }, "inflate"},
		{"checksum damaged", func(p []byte) []byte {
			n := int64(le.Uint32(p[g0+8:]))
			p[g0+12+n-1] ^= 0xff
			return p
		}, "checksum"},
		{"compressed data truncated", func(p []byte) []byte {
			le.PutUint32(p[g0+8:], le.Uint32(p[g0+8:])/2)
			return p
		}, "inflate"},
		{"no footer", func(p []byte) []byte { return p[:len(p)-512] }, "no footer"},
		{"footer grain directory at end", func(p []byte) []byte { le.PutUint64(p[footer+56:], sparseGDAtEnd); return p }, "at the end again"},
		{"footer not a sparse header", func(p []byte) []byte { copy(p[footer:], "XXXX"); return p }, "footer"},
		{"footer directory beyond file", func(p []byte) []byte { le.PutUint64(p[footer+56:], 1<<30); return p }, "grain directory"},
		{"grain table beyond file", func(p []byte) []byte { le.PutUint32(p[b.gdSector*512:], 1<<30); return p }, "beyond end of file"},
		{"grain marker beyond file", func(p []byte) []byte {
			gt := int64(le.Uint32(p[b.gdSector*512:])) * 512
			le.PutUint32(p[gt:], 1<<30)
			return p
		}, "beyond end of file"},
		{"unknown compression", func(p []byte) []byte { le.PutUint16(p[footer+77:], 2); return p }, "algorithm 2"},
		{"compression without markers", func(p []byte) []byte { le.PutUint32(p[footer+8:], 1|sparseFlagCompressed); return p }, "need markers"},
		{"markers without compression", func(p []byte) []byte { le.PutUint16(p[footer+77:], 0); return p }, "need markers"},
		{"huge compressed grains", func(p []byte) []byte { le.PutUint64(p[footer+20:], 1<<14); return p }, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.patch(bytes.Clone(b.img))
			e, _, err := openSparseExtent(bytes.NewReader(p), "test.vmdk", int64(len(p)))
			if err == nil {
				err = e.readAt(make([]byte, e.capacity), 0)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantInErr)
			}
		})
	}
}

// A grain that inflates to more than a grain is refused.
func TestVMDKStreamOptimizedGrainTooLong(t *testing.T) {
	s, _ := streamSeed()
	s.grains[2] = bytes.Repeat([]byte{1}, 4097)
	b := buildStream(s)
	e, _, err := openSparseExtent(bytes.NewReader(b.img), "test.vmdk", int64(len(b.img)))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int64{4096, 100} { // whole grain and part
		if err := e.readAt(make([]byte, n), 2*4096); err == nil || !strings.Contains(err.Error(), "more data than a grain") {
			t.Fatalf("read of %d = %v, want a too-long error", n, err)
		}
	}
	s.grains[2] = bytes.Repeat([]byte{1}, 1000) // and one too short
	b = buildStream(s)
	e, _, _ = openSparseExtent(bytes.NewReader(b.img), "test.vmdk", int64(len(b.img)))
	if err := e.readAt(make([]byte, 4096), 2*4096); err == nil || !strings.Contains(err.Error(), "holds 1000 bytes") {
		t.Fatalf("read = %v, want a too-short error", err)
	}
}
