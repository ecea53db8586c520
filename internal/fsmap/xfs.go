package fsmap

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// xfs on-disk constants (see the kernel's xfs_format.h).
const (
	xfsAGFMagic     = 0x58414746 // "XAGF"
	xfsBnoMagicV4   = 0x41425442 // "ABTB"
	xfsBnoMagicV5   = 0x41423342 // "AB3B"
	xfsMaxLevels    = 9
	xfsIncompatOK   = 0x1 | 0x2 | 0x4 | 0x8 | 0x20 | 0x40 | 0x80
	xfsAGFCRCOffset = 216
	xfsBtCRCOffset  = 52
	xfsMaxAGs       = 1 << 20
	// xfsMaxBtreeBlocks bounds one AG's bnobt walk (a real one of a 1 TiB
	// AG fragmented into 4 KiB pieces has about 200,000 blocks).
	xfsMaxBtreeBlocks = 1 << 19
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// xfsFS is a parsed xfs superblock.
type xfsFS struct {
	r        io.ReaderAt
	size     int64
	bs       int64
	dblocks  uint64
	agblocks uint64
	agcount  uint64
	sectsize int64
	v5       bool
	agblklog uint
	logstart uint64
	logbytes int64
}

// xfsFree returns the free extents of every allocation group of an xfs
// volume, from each AG's bnobt.
func xfsFree(ctx context.Context, r io.ReaderAt, size int64) ([]Range, error) {
	fs, err := readXFSSuper(r, size)
	if err != nil {
		return nil, err
	}
	if err := fs.logClean(); err != nil {
		return nil, err
	}
	var out []Range
	for ag := uint64(0); ag < fs.agcount; ag++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		runs, err := fs.agFree(ag)
		if err != nil {
			return nil, fmt.Errorf("allocation group %d: %w", ag, err)
		}
		if len(out)+len(runs) > maxRuns {
			return nil, fmt.Errorf("%w: free space in more than %d pieces", errDamaged, maxRuns)
		}
		base := int64(ag*fs.agblocks) * fs.bs
		for _, b := range runs {
			out = append(out, Range{Offset: base + int64(b.start)*fs.bs, Length: int64(b.n) * fs.bs, Reason: ReasonFree})
		}
	}
	return out, nil
}

func readXFSSuper(r io.ReaderAt, size int64) (*xfsFS, error) {
	sb := make([]byte, 512)
	if err := readFull(r, size, sb, 0); err != nil {
		return nil, err
	}
	be := binary.BigEndian
	if string(sb[0:4]) != "XFSB" {
		return nil, fmt.Errorf("%w: no xfs superblock", errDamaged)
	}
	fs := &xfsFS{r: r, size: size, bs: int64(be.Uint32(sb[4:])), dblocks: be.Uint64(sb[8:]),
		agblocks: uint64(be.Uint32(sb[84:])), agcount: uint64(be.Uint32(sb[88:])), sectsize: int64(be.Uint16(sb[102:])),
		agblklog: uint(sb[124]), logstart: be.Uint64(sb[48:])}
	fs.logbytes = int64(be.Uint32(sb[96:])) * fs.bs
	if fs.sectsize > 512 && fs.sectsize <= 65536 { // the checksum covers the whole sector
		sb = make([]byte, fs.sectsize)
		if err := readFull(r, size, sb, 0); err != nil {
			return nil, err
		}
	}
	if err := fs.check(sb); err != nil {
		return nil, err
	}
	return fs, nil
}

// check refuses a superblock this package does not read or that does not
// fit its volume.
func (fs *xfsFS) check(sb []byte) error {
	be := binary.BigEndian
	version := be.Uint16(sb[100:]) & 0xF
	fs.v5 = version == 5
	size := fs.size
	switch {
	case version != 4 && version != 5:
		return fmt.Errorf("%w: xfs version %d", errDamaged, version)
	case sb[126] != 0:
		return fmt.Errorf("%w: mkfs did not finish", errDamaged)
	case fs.v5 && be.Uint32(sb[216:])&^xfsIncompatOK != 0:
		return fmt.Errorf("%w: unsupported incompatible features %#x (or needs repair)", errDamaged, be.Uint32(sb[216:]))
	case fs.bs < 512 || fs.bs > 65536 || fs.bs&(fs.bs-1) != 0 || fs.sectsize < 512 || fs.sectsize > fs.bs || fs.sectsize&(fs.sectsize-1) != 0:
		return fmt.Errorf("%w: block size %d, sector size %d", errDamaged, fs.bs, fs.sectsize)
	case fs.agblocks < 5 || fs.agcount == 0 || fs.agcount > xfsMaxAGs || fs.agblklog >= 32 || fs.agblocks > 1<<fs.agblklog:
		return fmt.Errorf("%w: %d allocation groups of %d blocks", errDamaged, fs.agcount, fs.agblocks)
	case fs.dblocks > uint64(size/fs.bs) || fs.dblocks <= (fs.agcount-1)*fs.agblocks || fs.dblocks > fs.agcount*fs.agblocks:
		return fmt.Errorf("%w: %d blocks do not fit the volume or the groups", errDamaged, fs.dblocks)
	}
	if fs.v5 && crc32.Checksum(zeroed(sb, 224), castagnoli) != binary.LittleEndian.Uint32(sb[224:]) {
		return fmt.Errorf("%w: superblock checksum", errDamaged)
	}
	return nil
}

// zeroed returns a copy of b with the 4-byte checksum at off cleared.
func zeroed(b []byte, off int) []byte {
	c := append([]byte(nil), b...)
	copy(c[off:off+4], []byte{0, 0, 0, 0})
	return c
}

// agLength is the number of blocks of allocation group ag.
func (fs *xfsFS) agLength(ag uint64) uint64 {
	return min(fs.agblocks, fs.dblocks-ag*fs.agblocks)
}

// agFree checks an AG's AGF and walks its bnobt.
func (fs *xfsFS) agFree(ag uint64) ([]blockRun, error) {
	base := int64(ag*fs.agblocks) * fs.bs
	agf := make([]byte, fs.sectsize)
	if err := readFull(fs.r, fs.size, agf, base+fs.sectsize); err != nil {
		return nil, err
	}
	be := binary.BigEndian
	length := fs.agLength(ag)
	root, levels, freeblks := uint64(be.Uint32(agf[16:])), int(be.Uint32(agf[28:])), uint64(be.Uint32(agf[52:]))
	switch {
	case be.Uint32(agf[0:]) != xfsAGFMagic || be.Uint32(agf[4:]) != 1 || uint64(be.Uint32(agf[8:])) != ag:
		return nil, fmt.Errorf("%w: bad AGF header", errDamaged)
	case uint64(be.Uint32(agf[12:])) != length:
		return nil, fmt.Errorf("%w: AGF length %d, expected %d", errDamaged, be.Uint32(agf[12:]), length)
	case fs.v5 && crc32.Checksum(zeroed(agf, xfsAGFCRCOffset), castagnoli) != binary.LittleEndian.Uint32(agf[xfsAGFCRCOffset:]):
		return nil, fmt.Errorf("%w: AGF checksum", errDamaged)
	case root == 0 || root >= length || levels < 1 || levels > xfsMaxLevels:
		return nil, fmt.Errorf("%w: bnobt root %d, %d levels", errDamaged, root, levels)
	}
	w := &bnoWalk{fs: fs, ag: ag, length: length, visited: map[uint64]bool{}}
	if err := w.walk(root, levels-1); err != nil {
		return nil, err
	}
	if w.total != freeblks {
		return nil, fmt.Errorf("%w: bnobt holds %d free blocks, the AGF says %d", errDamaged, w.total, freeblks)
	}
	return w.runs, nil
}

// bnoWalk walks one AG's bnobt in key order.
type bnoWalk struct {
	fs      *xfsFS
	ag      uint64
	length  uint64
	visited map[uint64]bool
	runs    []blockRun
	total   uint64
}

func (w *bnoWalk) hdr() int {
	if w.fs.v5 {
		return 56
	}
	return 16
}

func (w *bnoWalk) walk(agbno uint64, level int) error {
	if len(w.visited) >= xfsMaxBtreeBlocks || len(w.runs) > maxRuns {
		return fmt.Errorf("%w: bnobt larger than %d blocks or %d extents", errDamaged, xfsMaxBtreeBlocks, maxRuns)
	}
	if agbno == 0 || agbno >= w.length || w.visited[agbno] {
		return fmt.Errorf("%w: bnobt pointer to block %d (outside the AG or seen before)", errDamaged, agbno)
	}
	w.visited[agbno] = true
	b, err := w.block(agbno, level)
	if err != nil {
		return err
	}
	be := binary.BigEndian
	n, hdr := int(be.Uint16(b[6:])), w.hdr()
	if level == 0 {
		if n > (len(b)-hdr)/8 {
			return fmt.Errorf("%w: bnobt leaf %d holds %d records", errDamaged, agbno, n)
		}
		for i := range n {
			rec := b[hdr+8*i:]
			start, count := uint64(be.Uint32(rec)), uint64(be.Uint32(rec[4:]))
			if err := w.add(start, count); err != nil {
				return err
			}
		}
		return nil
	}
	maxrecs := (len(b) - hdr) / 12
	if n < 1 || n > maxrecs {
		return fmt.Errorf("%w: bnobt node %d holds %d pointers", errDamaged, agbno, n)
	}
	for i := range n {
		if err := w.walk(uint64(be.Uint32(b[hdr+8*maxrecs+4*i:])), level-1); err != nil {
			return err
		}
	}
	return nil
}

// block reads and checks one bnobt block at level.
func (w *bnoWalk) block(agbno uint64, level int) ([]byte, error) {
	b := make([]byte, w.fs.bs)
	daddr := (int64(w.ag*w.fs.agblocks) + int64(agbno)) * w.fs.bs
	if err := readFull(w.fs.r, w.fs.size, b, daddr); err != nil {
		return nil, err
	}
	be := binary.BigEndian
	magic := uint32(xfsBnoMagicV4)
	if w.fs.v5 {
		magic = xfsBnoMagicV5
	}
	switch {
	case be.Uint32(b) != magic || int(be.Uint16(b[4:])) != level:
		return nil, fmt.Errorf("%w: bnobt block %d: bad magic or level", errDamaged, agbno)
	case w.fs.v5 && (be.Uint64(b[16:]) != uint64(daddr/512) || uint64(be.Uint32(b[48:])) != w.ag):
		return nil, fmt.Errorf("%w: bnobt block %d: wrong address or owner", errDamaged, agbno)
	case w.fs.v5 && crc32.Checksum(zeroed(b, xfsBtCRCOffset), castagnoli) != binary.LittleEndian.Uint32(b[xfsBtCRCOffset:]):
		return nil, fmt.Errorf("%w: bnobt block %d: checksum", errDamaged, agbno)
	}
	return b, nil
}

// add records a free extent; extents must come in order, apart, inside
// the AG and after its headers.
func (w *bnoWalk) add(start, count uint64) error {
	prevEnd := uint64(1)
	if n := len(w.runs); n > 0 {
		prevEnd = w.runs[n-1].start + w.runs[n-1].n
	}
	if count == 0 || start < prevEnd || start >= w.length || count > w.length-start {
		return fmt.Errorf("%w: free extent %d+%d out of order or outside the AG", errDamaged, start, count)
	}
	w.runs = append(w.runs, blockRun{start: start, n: count})
	w.total += count
	return nil
}
