package file

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/lima-vm/go-qcow2reader/image/qcow2"
	qlog "github.com/lima-vm/go-qcow2reader/log"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// Fuzz targets feed arbitrary bytes to the parsers: they must return an
// error or a disk, never panic nor allocate more than the input justifies.

func FuzzVMDKSparseHeader(f *testing.F) {
	f.Add(buildSparse(sparseImage{capacity: 2048, grainSize: 8, gtes: 512, grains: map[int64]byte{0: 1, 3: 0, 7: 2}}))
	f.Add(buildSparse(sparseImage{capacity: 300, grainSize: 1, gtes: 4, grains: map[int64]byte{1: 9, 299: 0},
		descriptor: descriptorText("monolithicSparse", "RW 300 SPARSE \"x.vmdk\"\n")}))
	f.Add(buildSparse(sparseImage{capacity: 0, grainSize: 128, gtes: 512}))
	_, stream := streamSeed() // streamOptimized, directory in the footer
	f.Add(stream.img)
	for _, seed := range qemuStreamSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, _, err := openSparseExtent(bytes.NewReader(data), "fuzz.vmdk", int64(len(data)))
		if err != nil {
			return
		}
		exerciseExtent(t, e, e.capacity)
	})
}

// qemuStreamSeeds returns small streamOptimized images made by qemu-img
// (directory in the header), if qemu is installed.
func qemuStreamSeeds(f *testing.F) [][]byte {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return nil
	}
	dir := f.TempDir()
	raw, vmdk := filepath.Join(dir, "src.raw"), filepath.Join(dir, "so.vmdk")
	cmds := [][]string{
		{"qemu-img", "create", "-q", "-f", "raw", raw, "192k"},
		{"qemu-io", "-f", "raw", "-c", "write -P 0xab 1k 2k", "-c", "write -P 0xcd 130k 1k", raw},
		{"qemu-img", "convert", "-f", "raw", "-O", "vmdk", "-o", "subformat=streamOptimized", raw, vmdk},
	}
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			f.Logf("%q: %v: %s", c, err, out)
			return nil
		}
	}
	b, err := os.ReadFile(vmdk)
	if err != nil {
		return nil
	}
	return [][]byte{bytes.TrimRight(b, "\x00")} // qemu pads the file with zeros
}

// exerciseExtent lists the allocation of an extent and reads its start and
// the start of each allocated range.
func exerciseExtent(t *testing.T, e extent, length int64) {
	var list extentList
	if err := e.allocated(context.Background(), length, 0, list.add); err != nil {
		return
	}
	checkExtents(t, list.extents, length)
	buf := make([]byte, 8192)
	_ = e.readAt(buf[:min(length, int64(len(buf)))], 0)
	for i, a := range list.extents {
		if i == 16 {
			break
		}
		_ = e.readAt(buf[:min(a.Length, int64(len(buf)))], a.Offset)
	}
}

func FuzzVMDKDescriptor(f *testing.F) {
	f.Add([]byte(descriptorText("monolithicFlat", "RW 20480 FLAT \"disk-flat.vmdk\" 0\n")))
	f.Add([]byte(descriptorText("twoGbMaxExtentSparse", "RW 4194304 SPARSE \"a-s001.vmdk\"\nRDONLY 8 ZERO\nNOACCESS 1 VMFS \"b c.vmdk\" 7 extra\n")))
	f.Add([]byte("# Disk DescriptorFile\r\nparentCID=1234\r\nRW\t1\tFLAT\t\"x\"\t0\r\n\x00garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := parseDescriptor(data)
		if err != nil {
			return
		}
		var total int64
		for _, x := range d.extents {
			if x.sectors <= 0 || x.offset < 0 || (x.kind != "ZERO" && x.file == "") {
				t.Fatalf("invalid extent accepted: %+v", x)
			}
			total += x.sectors
		}
		if total > maxSectors || len(d.extents) > maxVMDKExtents {
			t.Fatalf("descriptor of %d sectors in %d extents accepted", total, len(d.extents))
		}
	})
}

// qcow2Seed builds a minimal valid qcow2 v3 image: header, L1 table, one L2
// table mapping one data cluster, with 512-byte clusters.
func qcow2Seed(version uint32, extendedL2 bool) []byte {
	const cluster = 512
	img := make([]byte, 4*cluster)
	be := binary.BigEndian
	copy(img, qcow2Magic)
	be.PutUint32(img[4:], version)
	be.PutUint32(img[20:], 9)          // cluster bits
	be.PutUint64(img[24:], 16*cluster) // virtual size
	be.PutUint32(img[36:], 1)          // L1 entries
	be.PutUint64(img[40:], cluster)    // L1 offset
	if version == 3 {
		be.PutUint32(img[96:], 4)    // refcount order
		be.PutUint32(img[100:], 112) // header length
		if extendedL2 {
			be.PutUint64(img[72:], qcow2FeatureExtendedL2)
		}
	}
	be.PutUint64(img[cluster:], 2*cluster|1<<63) // L1 -> L2
	entry := uint64(3*cluster) | 1<<63           // L2[1] -> data cluster
	if extendedL2 {
		be.PutUint64(img[2*cluster+16:], entry)
		be.PutUint64(img[2*cluster+24:], 0xffffffff) // all subclusters allocated
	} else {
		be.PutUint64(img[2*cluster+8:], entry)
	}
	copy(img[3*cluster:], bytes.Repeat([]byte{0xab}, cluster))
	return img
}

func FuzzQcow2Open(f *testing.F) {
	qlog.SetWarnFunc(func(string) {}) // the library's warnings are noise here
	f.Add(qcow2Seed(3, false))
	f.Add(qcow2Seed(3, true))
	f.Add(qcow2Seed(2, false))
	for _, seed := range qemuQcow2Seeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ra := bytes.NewReader(data)
		img, err := readQcow2Image(ra, int64(len(data)))
		if err != nil || img.backingFile != "" {
			return // backing files are opened by name: not for a fuzzer
		}
		layer := &qcow2Layer{ra: ra, fileSize: int64(len(data)), img: img}
		var list extentList
		if err := layer.allocated(context.Background(), int64(img.size), list.add); err == nil {
			checkExtents(t, list.extents, int64(img.size))
		}
		if img.size == 0 {
			return
		}
		lib, err := qcow2.Open(ra, nil)
		if err != nil || lib.Readable() != nil {
			return
		}
		d := &qcow2Disk{info: source.Info{Format: "qcow2"}, size: int64(img.size), img: lib}
		buf := make([]byte, 8192)
		_, _ = d.ReadAt(buf, 0)
		for _, a := range list.extents[:min(len(list.extents), 16)] {
			_, _ = d.ReadAt(buf[:min(a.Length, int64(len(buf)))], a.Offset)
		}
	})
}

// qemuQcow2Seeds returns small qcow2 images made by qemu-img (512-byte
// clusters) with data, zero and compressed clusters, if qemu is installed.
func qemuQcow2Seeds(f *testing.F) [][]byte {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		return nil
	}
	dir := f.TempDir()
	var seeds [][]byte
	for i, opts := range []string{"cluster_size=512", "cluster_size=512,compat=0.10", "cluster_size=512,compression_type=zstd"} {
		path := filepath.Join(dir, fmt.Sprintf("%d.qcow2", i))
		cmds := [][]string{
			{"qemu-img", "create", "-q", "-f", "qcow2", "-o", opts, path, "64k"},
			{"qemu-io", "-f", "qcow2", "-c", "write -P 0xab 1k 2k", "-c", "write -z 8k 1k", "-c", "write -c -P 0xcd 16k 1k", path},
		}
		for _, c := range cmds {
			if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
				f.Logf("%q: %v: %s", c, err, out)
				return seeds
			}
		}
		if b, err := os.ReadFile(path); err == nil {
			seeds = append(seeds, b)
		}
	}
	return seeds
}

// TestFuzzSeeds checks that the hand-built qcow2 seeds are valid images, so
// the fuzzer starts from the success paths.
func TestFuzzSeeds(t *testing.T) {
	for _, seed := range [][]byte{qcow2Seed(3, false), qcow2Seed(3, true), qcow2Seed(2, false)} {
		ra := bytes.NewReader(seed)
		img, err := readQcow2Image(ra, int64(len(seed)))
		if err != nil {
			t.Fatal(err)
		}
		var list extentList
		layer := &qcow2Layer{ra: ra, fileSize: int64(len(seed)), img: img}
		if err := layer.allocated(context.Background(), int64(img.size), list.add); err != nil {
			t.Fatal(err)
		}
		if want := []source.Extent{ext(512, 512)}; len(list.extents) != 1 || list.extents[0] != want[0] {
			t.Fatalf("allocated = %v, want %v", list.extents, want)
		}
		lib, err := qcow2.Open(ra, nil)
		if err != nil {
			t.Fatal(err)
		}
		d := &qcow2Disk{size: int64(img.size), img: lib}
		got := make([]byte, 2048)
		if _, err := d.ReadAt(got, 0); err != nil {
			t.Fatal(err)
		}
		want := append(append(make([]byte, 512), bytes.Repeat([]byte{0xab}, 512)...), make([]byte, 1024)...) // of 8 KiB
		if !bytes.Equal(got, want) {
			t.Fatalf("seed reads wrong data")
		}
	}
}
