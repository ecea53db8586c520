package guestdisk

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
)

// lvmSample is metadata text as vgcreate/lvcreate write it (abridged).
const lvmSample = `vg0 {
id = "bx9qv3-aaaa-bbbb-cccc-dddd-eeee-ffffff"
seqno = 4
format = "lvm2" # informational
status = ["RESIZEABLE", "READ", "WRITE"]
extent_size = 8192
max_lv = 0
physical_volumes {
pv0 {
id = "Abcdef-1234-5678-9abc-def0-1234-567890"
device = "/dev/loop0"
status = ["ALLOCATABLE"]
dev_size = 131072
pe_start = 2048
pe_count = 15
}
}
logical_volumes {
data {
id = "x"
status = ["READ", "WRITE", "VISIBLE"]
segment_count = 2
segment1 {
start_extent = 0
extent_count = 3
type = "striped"
stripe_count = 1
stripes = [
"pv0", 0
]
}
segment2 {
start_extent = 3
extent_count = 2
type = "striped"
stripe_count = 1
stripes = [
"pv0", 5
]
}
}
}
}
contents = "Text Format Volume Group"
version = 1
description = ""
creation_time = 1700000000
`

func TestLVMText(t *testing.T) {
	cfg, err := parseLVMConfig([]byte(lvmSample))
	if err != nil {
		t.Fatal(err)
	}
	vg, err := vgFromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if vg.Name != "vg0" || vg.Seqno != 4 || vg.ExtentSize != 4<<20 || len(vg.LVs) != 1 {
		t.Fatalf("vg %+v", vg)
	}
	lv := vg.LVs[0]
	want := []Segment{{0, 12 << 20, "Abcdef123456789abcdef01234567890", 1 << 20}, {12 << 20, 8 << 20, "Abcdef123456789abcdef01234567890", 1<<20 + 5*4<<20}}
	if lv.Err != nil || lv.Size != 20<<20 || len(lv.Segments) != 2 || lv.Segments[0] != want[0] || lv.Segments[1] != want[1] {
		t.Fatalf("lv %+v", lv)
	}
	head := seedPV()
	if pv, err := ReadPV(bytes.NewReader(append(head, make([]byte, 1<<20)...)), int64(len(head))+1<<20); err != nil || pv.VG.Name != "vg0" || pv.UUID != want[0].PVUUID {
		t.Fatalf("ReadPV of the seed: %+v %v", pv, err)
	}
	// reading across the segment boundary
	pv := make([]byte, 64<<20)
	for i := range pv {
		pv[i] = byte(i >> 20)
	}
	r, err := NewLVReader(lv, map[string]io.ReaderAt{want[0].PVUUID: bytes.NewReader(pv)}, map[string]int64{want[0].PVUUID: int64(len(pv))})
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if _, err := r.ReadAt(b, 12<<20-1); err != nil || b[0] != 12 || b[1] != 21 {
		t.Errorf("read across segments: %v %v", b, err)
	}
}

// lvmOverflows are edits of lvmSample whose extent arithmetic wraps an
// int64: 2^42 extents of 4 MiB are 2^64 bytes, which wrapped to 0 (a
// segment at offset 0, or 12 MiB long, that looked valid).
var lvmOverflows = []struct{ name, old, new string }{
	{"start_extent", "start_extent = 0", "start_extent = 4398046511104"},
	{"extent_count", "extent_count = 3", "extent_count = 4398046511107"},
	{"physical extent", "\"pv0\", 5", "\"pv0\", 4398046511109"},
	{"sum of segments", "extent_count = 2", "extent_count = 274877906943"},
}

func TestLVMOverflow(t *testing.T) {
	for _, c := range lvmOverflows {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(lvmSample, c.old, c.new, 1)
			if text == lvmSample {
				t.Fatalf("%q not in the sample", c.old)
			}
			cfg, err := parseLVMConfig([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			vg, err := vgFromConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(vg.LVs) != 1 || vg.LVs[0].Err == nil || !strings.Contains(vg.LVs[0].Err.Error(), "logical volume data") {
				t.Fatalf("want an error naming LV data, got %+v", vg.LVs)
			}
		})
	}
	cfg, err := parseLVMConfig([]byte(strings.Replace(lvmSample, "pe_start = 2048", "pe_start = 36028797018963968", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vgFromConfig(cfg); err == nil {
		t.Fatal("pe_start of 2^55 sectors (2^64 bytes): no error")
	}
}

// FuzzLVMText feeds metadata text to the parser and the VG reader.
func FuzzLVMText(f *testing.F) {
	f.Add([]byte(lvmSample))
	f.Add([]byte("a { b = [ [ [ 1 ] ] ] c = \"\\\"\" }"))
	for _, c := range lvmOverflows {
		f.Add([]byte(strings.Replace(lvmSample, c.old, c.new, 1)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := parseLVMConfig(b)
		if err != nil {
			return
		}
		vg, err := vgFromConfig(cfg)
		if err != nil {
			return
		}
		for _, lv := range vg.LVs {
			if lv.Err == nil && (lv.Size <= 0 || lv.Size > lvmMaxBytes || len(lv.Segments) == 0) {
				t.Fatalf("lv %+v", lv)
			}
		}
	})
}

// FuzzReadPV feeds damaged PV heads (label, PV header, metadata area).
func FuzzReadPV(f *testing.F) {
	f.Add(seedPV())
	f.Fuzz(func(t *testing.T, head []byte) {
		const size = 1 << 20
		disk := make([]byte, size)
		copy(disk, head)
		pv, err := ReadPV(bytes.NewReader(disk), size)
		if err != nil {
			return
		}
		for _, lv := range pv.VG.LVs {
			_, _ = NewLVReader(lv, map[string]io.ReaderAt{pv.UUID: bytes.NewReader(disk)}, map[string]int64{pv.UUID: size})
		}
	})
}

// seedPV is a PV head: label in sector 1, one metadata area at 4 KiB
// holding lvmSample.
func seedPV() []byte {
	b := make([]byte, 4096+512+len(lvmSample))
	l := b[512:]
	copy(l, "LABELONE")
	binary.LittleEndian.PutUint64(l[8:], 1)
	binary.LittleEndian.PutUint32(l[20:], 32)
	copy(l[24:], "LVM2 001")
	h := l[32:]
	copy(h, "Abcdef123456789abcdef01234567890")
	binary.LittleEndian.PutUint64(h[32:], 1<<20)
	// data area (1 MiB on), end, metadata area at 4096 of 1 MiB, end
	binary.LittleEndian.PutUint64(h[40:], 1<<20)
	binary.LittleEndian.PutUint64(h[72:], 4096)
	binary.LittleEndian.PutUint64(h[80:], 1<<20-4096)
	m := b[4096:]
	copy(m[4:], lvmMDAMagic)
	binary.LittleEndian.PutUint32(m[20:], 1)
	binary.LittleEndian.PutUint64(m[24:], 4096)
	binary.LittleEndian.PutUint64(m[32:], 1<<20-4096)
	binary.LittleEndian.PutUint64(m[40:], 512)
	binary.LittleEndian.PutUint64(m[48:], uint64(len(lvmSample)))
	copy(m[512:], lvmSample)
	return b
}
