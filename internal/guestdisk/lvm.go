package guestdisk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"sort"
	"strings"
)

// ErrLVM is wrapped by every error about damaged or unreadable LVM2
// metadata.
var ErrLVM = errors.New("damaged LVM metadata")

// LVM2 on-disk constants (lvm2's lib/format_text/layout.h).
const (
	lvmMDAMagic    = " LVM2 x[5A%r0N*>"
	lvmMaxMetadata = 4 << 20 // bytes of metadata text read
	lvmMaxAreas    = 16      // data/metadata areas listed in a PV header
	lvmMaxLVs      = 4096
	lvmMaxSegments = 4096
	lvmMaxBytes    = 1 << 60 // bytes of one LV, segment, offset or extent
)

// lvmBytes is n units of unit bytes, or false when either is negative or
// the product is more than lvmMaxBytes (checked before it can wrap).
func lvmBytes(n, unit int64) (int64, bool) {
	if n < 0 || unit < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(n), uint64(unit))
	if hi != 0 || lo > lvmMaxBytes {
		return 0, false
	}
	return int64(lo), true
}

// PV is an LVM physical volume: its UUID (without dashes) and what its
// newest metadata says about its volume group.
type PV struct {
	UUID string
	VG   VG
}

// VG is a volume group as one PV's metadata describes it.
type VG struct {
	Name       string
	Seqno      int64
	ExtentSize int64            // bytes
	PVs        map[string]int64 // PV name in the metadata ("pv0") → data start (pe_start) in bytes
	PVUUIDs    map[string]string
	LVs        []LV
}

// LV is a logical volume, readable when every segment is linear.
type LV struct {
	Name     string
	Size     int64
	Segments []Segment
	Err      error // why it cannot be read (not linear, hidden, …)
}

// Segment maps LV bytes [Offset, Offset+Length) to PV bytes from
// PVOffset of the PV with UUID PVUUID.
type Segment struct {
	Offset   int64
	Length   int64
	PVUUID   string
	PVOffset int64
}

// ReadPV reads the LVM2 label and newest metadata of a physical volume of
// size bytes.
func ReadPV(r io.ReaderAt, size int64) (*PV, error) {
	var label []byte
	for sector := int64(0); sector < 4 && (sector+1)*sectorSize <= size; sector++ {
		b := make([]byte, sectorSize)
		if n, _ := r.ReadAt(b, sector*sectorSize); n != len(b) {
			break
		}
		if string(b[0:8]) == "LABELONE" && string(b[24:32]) == "LVM2 001" {
			label = b
			break
		}
	}
	if label == nil {
		return nil, fmt.Errorf("%w: no LVM2 label", ErrLVM)
	}
	le := binary.LittleEndian
	off := int(le.Uint32(label[20:]))
	if off < 32 || off+40 > len(label) {
		return nil, fmt.Errorf("%w: PV header at %d", ErrLVM, off)
	}
	h := label[off:]
	pv := &PV{UUID: string(h[0:32])}
	// data areas, then metadata areas, each list ended by a zero entry
	pos, lists := 40, [2][][2]uint64{}
	for l := range lists {
		for n := 0; ; n++ {
			if pos+16 > len(h) || n > lvmMaxAreas {
				return nil, fmt.Errorf("%w: PV header area lists overflow", ErrLVM)
			}
			o, s := le.Uint64(h[pos:]), le.Uint64(h[pos+8:])
			pos += 16
			if o == 0 && s == 0 {
				break
			}
			lists[l] = append(lists[l], [2]uint64{o, s})
		}
	}
	var newest *VG
	var lastErr error
	for _, mda := range lists[1] {
		vg, err := readMDA(r, size, mda[0], mda[1])
		if err != nil {
			lastErr = err
			continue
		}
		if newest == nil || vg.Seqno > newest.Seqno {
			newest = vg
		}
	}
	if newest == nil {
		if lastErr == nil {
			lastErr = fmt.Errorf("%w: no metadata area", ErrLVM)
		}
		return nil, lastErr
	}
	pv.VG = *newest
	return pv, nil
}

// readMDA reads the metadata text a metadata area's header points at.
func readMDA(r io.ReaderAt, size int64, start, length uint64) (*VG, error) {
	if start >= uint64(size) || length < 512 || length > uint64(size)-start {
		return nil, fmt.Errorf("%w: metadata area %d+%d outside the PV", ErrLVM, start, length)
	}
	h := make([]byte, 512)
	if _, err := r.ReadAt(h, int64(start)); err != nil {
		return nil, fmt.Errorf("%w: metadata area header: %v", ErrLVM, err)
	}
	if string(h[4:20]) != lvmMDAMagic {
		return nil, fmt.Errorf("%w: metadata area without magic", ErrLVM)
	}
	le := binary.LittleEndian
	locOff, locSize := le.Uint64(h[40:]), le.Uint64(h[48:])
	if locOff == 0 || locSize == 0 || locSize > lvmMaxMetadata || locSize > length-512 || locOff >= length || locOff < 512 {
		return nil, fmt.Errorf("%w: metadata text %d+%d in an area of %d", ErrLVM, locOff, locSize, length)
	}
	text := make([]byte, locSize)
	first := min(locSize, length-locOff) // the text may wrap to the area's start (after its header)
	if _, err := r.ReadAt(text[:first], int64(start+locOff)); err != nil {
		return nil, fmt.Errorf("%w: metadata text: %v", ErrLVM, err)
	}
	if first < locSize {
		if _, err := r.ReadAt(text[first:], int64(start+512)); err != nil {
			return nil, fmt.Errorf("%w: metadata text: %v", ErrLVM, err)
		}
	}
	text = bytes.TrimRight(text, "\x00")
	cfg, err := parseLVMConfig(text)
	if err != nil {
		return nil, err
	}
	return vgFromConfig(cfg)
}

func vgFromConfig(cfg section) (*VG, error) {
	var vg *VG
	for _, k := range cfg.keys {
		if sec, ok := cfg.values[k].(section); ok {
			if vg != nil {
				return nil, fmt.Errorf("%w: several volume groups in one metadata text", ErrLVM)
			}
			vg = &VG{Name: k}
			if err := vg.fill(sec); err != nil {
				return nil, err
			}
		}
	}
	if vg == nil {
		return nil, fmt.Errorf("%w: no volume group in the metadata", ErrLVM)
	}
	return vg, nil
}

func (vg *VG) fill(sec section) error {
	vg.Seqno = sec.num("seqno")
	es, ok := lvmBytes(sec.num("extent_size"), sectorSize)
	if !ok || es <= 0 || es > 1<<40 {
		return fmt.Errorf("%w: volume group %s: extent size of %d sectors", ErrLVM, vg.Name, sec.num("extent_size"))
	}
	vg.ExtentSize = es
	vg.PVs, vg.PVUUIDs = map[string]int64{}, map[string]string{}
	pvs, _ := sec.values["physical_volumes"].(section)
	for _, name := range pvs.keys {
		p, ok := pvs.values[name].(section)
		if !ok {
			continue
		}
		start, ok := lvmBytes(p.num("pe_start"), sectorSize)
		if !ok {
			return fmt.Errorf("%w: volume group %s: physical volume %s: pe_start %d out of range", ErrLVM, vg.Name, name, p.num("pe_start"))
		}
		vg.PVs[name] = start
		vg.PVUUIDs[name] = strings.ReplaceAll(p.str("id"), "-", "")
	}
	lvs, _ := sec.values["logical_volumes"].(section)
	if len(lvs.keys) > lvmMaxLVs {
		return fmt.Errorf("%w: %d logical volumes", ErrLVM, len(lvs.keys))
	}
	for _, name := range lvs.keys {
		l, ok := lvs.values[name].(section)
		if !ok {
			continue
		}
		lv := LV{Name: name}
		lv.Err = vg.segments(&lv, l)
		if lv.Err == nil || !hidden(l) {
			vg.LVs = append(vg.LVs, lv)
		}
	}
	return nil
}

func hidden(l section) bool {
	for _, s := range l.list("status") {
		if s == "VISIBLE" {
			return false
		}
	}
	return true
}

// segments maps a linear LV's segments to PV byte ranges.
func (vg *VG) segments(lv *LV, l section) error {
	if hidden(l) {
		return errors.New("not visible")
	}
	count := int(l.num("segment_count"))
	if count <= 0 || count > lvmMaxSegments {
		return fmt.Errorf("%d segments", count)
	}
	for i := 1; i <= count; i++ {
		s, ok := l.values[fmt.Sprintf("segment%d", i)].(section)
		if !ok {
			return fmt.Errorf("segment%d missing", i)
		}
		if t := s.str("type"); t != "striped" || s.num("stripe_count") != 1 {
			return fmt.Errorf("segment %d is %q with %d stripes: only linear volumes are read", i, t, s.num("stripe_count"))
		}
		stripes := s.values["stripes"]
		list, _ := stripes.([]any)
		if len(list) != 2 {
			return fmt.Errorf("segment %d: stripes %v", i, stripes)
		}
		pvName, _ := list[0].(string)
		pe, _ := list[1].(int64)
		start, ok := vg.PVs[pvName]
		if !ok || pe < 0 {
			return fmt.Errorf("segment %d: physical volume %q", i, pvName)
		}
		seg, err := vg.segment(lv.Name, i, s.num("start_extent"), s.num("extent_count"), start, pe)
		if err != nil {
			return err
		}
		seg.PVUUID = vg.PVUUIDs[pvName]
		lv.Segments = append(lv.Segments, seg)
	}
	sort.Slice(lv.Segments, func(i, j int) bool { return lv.Segments[i].Offset < lv.Segments[j].Offset })
	for i, s := range lv.Segments {
		if s.Offset != lv.Size {
			return fmt.Errorf("segment %d starts at %d, not %d", i+1, s.Offset, lv.Size)
		}
		if s.Length > lvmMaxBytes-lv.Size {
			return fmt.Errorf("logical volume %s: segments add up to more than %d bytes", lv.Name, int64(lvmMaxBytes))
		}
		lv.Size += s.Length
	}
	return nil
}

// segment maps segment i of LV name (extents of vg.ExtentSize bytes) to
// the bytes of its PV's data area, which starts at pvStart; every product
// and sum is checked before it is made.
func (vg *VG) segment(name string, i int, startExtent, count, pvStart, pe int64) (Segment, error) {
	off, ok1 := lvmBytes(startExtent, vg.ExtentSize)
	length, ok2 := lvmBytes(count, vg.ExtentSize)
	peOff, ok3 := lvmBytes(pe, vg.ExtentSize)
	if !ok1 || !ok2 || !ok3 || length == 0 || pvStart < 0 || peOff > lvmMaxBytes-pvStart {
		return Segment{}, fmt.Errorf("logical volume %s: segment %d: extents out of range (start %d, count %d, physical extent %d of %d bytes)",
			name, i, startExtent, count, pe, vg.ExtentSize)
	}
	return Segment{Offset: off, Length: length, PVOffset: pvStart + peOff}, nil
}

// LVReader is a logical volume's bytes over its PVs' readers.
type LVReader struct {
	segs []Segment
	pvs  []io.ReaderAt // per segment
	size int64
}

// NewLVReader reads lv through the PVs (by UUID) that hold it; each PV
// reader is the PV's whole volume, and pvSizes bound the segments.
func NewLVReader(lv LV, pvs map[string]io.ReaderAt, pvSizes map[string]int64) (*LVReader, error) {
	if lv.Err != nil {
		return nil, lv.Err
	}
	lr := &LVReader{segs: lv.Segments, size: lv.Size}
	for i, s := range lv.Segments {
		pv, ok := pvs[s.PVUUID]
		if !ok {
			return nil, fmt.Errorf("physical volume %s of segment %d is not in this point", s.PVUUID, i+1)
		}
		if s.PVOffset+s.Length > pvSizes[s.PVUUID] {
			return nil, fmt.Errorf("%w: segment %d reaches past its physical volume", ErrLVM, i+1)
		}
		lr.pvs = append(lr.pvs, pv)
	}
	return lr, nil
}

// Size is the LV's size in bytes.
func (l *LVReader) Size() int64 { return l.size }

// ReadAt reads the LV's bytes at off.
func (l *LVReader) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 {
		if off >= l.size {
			return n, io.EOF
		}
		i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].Offset+l.segs[i].Length > off })
		s := l.segs[i]
		in := off - s.Offset
		k := min(int64(len(p)), s.Length-in)
		m, err := l.pvs[i].ReadAt(p[:k], s.PVOffset+in)
		n += m
		if int64(m) < k {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		p, off = p[k:], off+k
	}
	return n, nil
}

// DMName is device-mapper's name of logical volume lv of volume group vg
// (/dev/mapper/NAME): the two joined by "-", each "-" in them doubled.
func DMName(vg, lv string) string {
	return strings.ReplaceAll(vg, "-", "--") + "-" + strings.ReplaceAll(lv, "-", "--")
}
