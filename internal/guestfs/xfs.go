package guestfs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"time"
)

// xfs on-disk constants (see the kernel's fs/xfs/libxfs/xfs_format.h,
// xfs_da_format.h and xfs_log_format.h). Everything is big-endian.
const (
	xfsFmtDev     = 0
	xfsFmtLocal   = 1
	xfsFmtExtents = 2
	xfsFmtBtree   = 3

	xfsIncFtype      = 0x1
	xfsFeat2Ftype    = 0x200
	xfsDiflagRT      = 0x1
	xfsDiflag2Big    = 1 << 3
	xfsDiflag2NRExt  = 1 << 4
	xfsCoreV2        = 100
	xfsCoreV3        = 176
	xfsBmbtHdrV4     = 24
	xfsBmbtHdrV5     = 72
	xfsDirHdrV4      = 16
	xfsDirHdrV5      = 64
	xfsSymlinkHdr    = 56
	xfsBigtimeOffset = 1 << 31 // seconds from 1901-12-13T20:45:52Z to the Unix epoch
)

var be = binary.BigEndian

type xfs struct {
	r         io.ReaderAt
	volSize   int64
	blockSize int64
	agBlocks  uint64
	agCount   uint64
	agBlkLog  uint
	inoPBLog  uint
	inodeSize int64
	rootIno   uint64
	v5        bool
	ftype     bool
	dirBlock  int64
}

func openXFS(r io.ReaderAt, volSize int64) (*xfs, error) {
	sb := make([]byte, 512)
	if err := readFull(r, sb, 0); err != nil {
		return nil, fmt.Errorf("xfs superblock: %w", err)
	}
	if string(sb[0:4]) != "XFSB" {
		return nil, corrupt("xfs: no superblock magic")
	}
	x := &xfs{
		r:         r,
		volSize:   volSize,
		blockSize: int64(be.Uint32(sb[4:])),
		rootIno:   be.Uint64(sb[56:]),
		agBlocks:  uint64(be.Uint32(sb[84:])),
		agCount:   uint64(be.Uint32(sb[88:])),
		inodeSize: int64(be.Uint16(sb[104:])),
		agBlkLog:  uint(sb[124]),
		inoPBLog:  uint(sb[123]),
	}
	version := be.Uint16(sb[100:]) & 0xf
	x.v5 = version == 5
	if x.v5 {
		x.ftype = be.Uint32(sb[216:])&xfsIncFtype != 0
	} else {
		x.ftype = be.Uint32(sb[200:])&xfsFeat2Ftype != 0
	}
	dirBlkLog := uint(sb[192])
	switch {
	case version != 4 && version != 5:
		return nil, fmt.Errorf("%w: xfs version %d", ErrUnsupported, version)
	case x.blockSize < 512 || x.blockSize > maxBlockSize || x.blockSize&(x.blockSize-1) != 0:
		return nil, corrupt("xfs: block size %d", x.blockSize)
	case x.inodeSize < 256 || x.inodeSize > 2048 || x.inodeSize&(x.inodeSize-1) != 0:
		return nil, corrupt("xfs: inode size %d", x.inodeSize)
	case x.agBlocks == 0 || x.agCount == 0 || x.agBlkLog > 32 || x.agBlocks > 1<<x.agBlkLog:
		return nil, corrupt("xfs: %d allocation groups of %d blocks (log %d)", x.agCount, x.agBlocks, x.agBlkLog)
	case 1<<x.inoPBLog != x.blockSize/x.inodeSize:
		return nil, corrupt("xfs: %d inodes per block (log %d)", x.blockSize/x.inodeSize, x.inoPBLog)
	case dirBlkLog > 8 || x.blockSize<<dirBlkLog > maxDirBlockLen:
		return nil, corrupt("xfs: directory block log %d", dirBlkLog)
	}
	x.dirBlock = x.blockSize << dirBlkLog
	return x, nil
}

func (x *xfs) root() uint64 { return x.rootIno }

// fsbToByte turns a filesystem block number (AG number and AG block) into
// a byte offset in the volume.
func (x *xfs) fsbToByte(fsb uint64) (int64, error) {
	ag, agb := fsb>>x.agBlkLog, fsb&(1<<x.agBlkLog-1)
	if ag >= x.agCount || agb >= x.agBlocks {
		return 0, corrupt("xfs: block %d (AG %d block %d) outside the filesystem", fsb, ag, agb)
	}
	off := (ag*x.agBlocks + agb) * uint64(x.blockSize)
	if off >= uint64(x.volSize) {
		return 0, corrupt("xfs: block %d lies past the volume", fsb)
	}
	return int64(off), nil
}

func (x *xfs) inodeBytes(ino uint64) ([]byte, error) {
	fsb := ino >> x.inoPBLog
	off, err := x.fsbToByte(fsb)
	if err != nil {
		return nil, fmt.Errorf("xfs: inode %d: %w", ino, err)
	}
	off += int64(ino&(1<<x.inoPBLog-1)) * x.inodeSize
	b := make([]byte, x.inodeSize)
	if err := readFull(x.r, b, off); err != nil {
		return nil, fmt.Errorf("xfs: inode %d: %w", ino, err)
	}
	if string(b[0:2]) != "IN" {
		return nil, corrupt("xfs: inode %d: no inode magic", ino)
	}
	return b, nil
}

func (x *xfs) inode(ino uint64) (*node, error) {
	b, err := x.inodeBytes(ino)
	if err != nil {
		return nil, err
	}
	n, core, flags2, err := xfsInodeCore(b, ino)
	if err != nil {
		return nil, err
	}
	fork, err := x.dataFork(b, core, ino)
	if err != nil {
		return nil, err
	}
	switch n.Mode.Type() {
	case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
		n.Rdev = be.Uint32(fork)
		n.Size = 0
		return n, nil
	case fs.ModeNamedPipe, fs.ModeSocket:
		n.Size = 0
		return n, nil
	}
	nextents := uint64(be.Uint32(b[76:]))
	if flags2&xfsDiflag2NRExt != 0 {
		nextents = be.Uint64(b[24:])
	}
	exts, err := x.forkExtents(n, b[5], fork, nextents)
	if err != nil {
		return nil, err
	}
	if n.isInl {
		return n, nil
	}
	if n.Mode.IsDir() || n.Mode&fs.ModeSymlink != 0 {
		// kept whole: a directory's leaf and free blocks lie past its
		// size, and a v5 symlink's blocks start with a header
		n.extents = exts
		return n, x.checkExtents(exts, ino)
	}
	if n.extents, err = finishExtents(exts, n.Size, x.volSize, ino); err != nil {
		return nil, err
	}
	return n, nil
}

// xfsInodeCore decodes an inode's core: its metadata, the size of the
// core (where the data fork starts) and di_flags2.
func xfsInodeCore(b []byte, ino uint64) (n *node, core int64, flags2 uint64, err error) {
	mode := uint32(be.Uint16(b[2:]))
	n = &node{Stat: Stat{
		Ino:  ino,
		Perm: mode,
		Mode: goMode(mode),
		UID:  be.Uint32(b[8:]),
		GID:  be.Uint32(b[12:]),
		Size: int64(be.Uint64(b[56:])),
	}}
	core = xfsCoreV2
	switch version := b[4]; version {
	case 1:
		n.Nlink = uint32(be.Uint16(b[6:]))
	case 2:
		n.Nlink = be.Uint32(b[16:])
	case 3:
		n.Nlink = be.Uint32(b[16:])
		core = xfsCoreV3
		flags2 = be.Uint64(b[120:])
	default:
		return nil, 0, 0, corrupt("xfs: inode %d: version %d", ino, version)
	}
	big := flags2&xfsDiflag2Big != 0
	n.Atime, n.Mtime, n.Ctime = xfsTime(b[32:], big), xfsTime(b[40:], big), xfsTime(b[48:], big)
	if n.Size < 0 || n.Size > maxFileSize {
		return nil, 0, 0, corrupt("xfs: inode %d: size %d", ino, n.Size)
	}
	if be.Uint16(b[90:])&xfsDiflagRT != 0 {
		return nil, 0, 0, fmt.Errorf("%w: xfs inode %d is a realtime file", ErrUnsupported, ino)
	}
	return n, core, flags2, nil
}

// dataFork is the inode's data fork: from the end of the core to the
// attribute fork, or to the end of the inode.
func (x *xfs) dataFork(b []byte, core int64, ino uint64) ([]byte, error) {
	forkSize := x.inodeSize - core
	if forkOff := int64(b[82]) * 8; forkOff != 0 {
		if forkOff > forkSize {
			return nil, corrupt("xfs: inode %d: attribute fork offset %d", ino, forkOff)
		}
		forkSize = forkOff
	}
	return b[core : core+forkSize], nil
}

// forkExtents reads the data fork of format: local bytes become n's inline
// data (no extents), extent lists and btrees their extents.
func (x *xfs) forkExtents(n *node, format byte, fork []byte, nextents uint64) ([]Extent, error) {
	switch format {
	case xfsFmtLocal:
		if n.Size > int64(len(fork)) {
			return nil, corrupt("xfs: inode %d: %d local bytes in a fork of %d", n.Ino, n.Size, len(fork))
		}
		n.inline, n.isInl = append([]byte(nil), fork[:n.Size]...), true
		return nil, nil
	case xfsFmtExtents:
		if nextents*16 > uint64(len(fork)) {
			return nil, corrupt("xfs: inode %d: %d extents in a fork of %d bytes", n.Ino, nextents, len(fork))
		}
		return x.extentRecs(fork[:nextents*16], nil, n.Ino)
	case xfsFmtBtree:
		return x.btreeRoot(fork, n.Ino)
	default:
		return nil, corrupt("xfs: inode %d: data fork format %d", n.Ino, format)
	}
}

func (x *xfs) checkExtents(exts []Extent, ino uint64) error {
	_, err := finishExtents(append([]Extent(nil), exts...), 1<<62, x.volSize, ino)
	return err
}

// xfsTime decodes a timestamp: seconds and nanoseconds, or with bigtime
// nanoseconds since 1901-12-13.
func xfsTime(b []byte, big bool) time.Time {
	if big {
		ns := be.Uint64(b)
		return time.Unix(int64(ns/1e9)-xfsBigtimeOffset, int64(ns%1e9)).UTC()
	}
	nsec := int64(be.Uint32(b[4:]))
	if nsec > 999999999 {
		nsec = 0
	}
	return time.Unix(int64(int32(be.Uint32(b))), nsec).UTC()
}

// extentRecs decodes 16-byte bmbt records; unwritten extents are left out.
func (x *xfs) extentRecs(recs []byte, exts []Extent, ino uint64) ([]Extent, error) {
	for i := 0; i+16 <= len(recs); i += 16 {
		l0, l1 := be.Uint64(recs[i:]), be.Uint64(recs[i+8:])
		if l0>>63 != 0 {
			continue // unwritten
		}
		startOff := (l0 & (1<<63 - 1)) >> 9
		startBlock := (l0&(1<<9-1))<<43 | l1>>21
		count := int64(l1 & (1<<21 - 1))
		phys, err := x.fsbToByte(startBlock)
		if err != nil {
			return nil, fmt.Errorf("xfs: inode %d: extent: %w", ino, err)
		}
		if startOff > uint64(maxFileSize)/uint64(x.blockSize) {
			return nil, corrupt("xfs: inode %d: extent at file block %d", ino, startOff)
		}
		if len(exts) >= maxExtents {
			return nil, corrupt("xfs: inode %d: more than %d extents", ino, maxExtents)
		}
		exts = append(exts, Extent{Logical: int64(startOff) * x.blockSize, Physical: phys, Length: count * x.blockSize})
	}
	return exts, nil
}

// btreeRoot walks a data fork in btree format: the root in the inode
// (level, count, keys, pointers), blocks below it.
func (x *xfs) btreeRoot(fork []byte, ino uint64) ([]Extent, error) {
	if len(fork) < 4 {
		return nil, corrupt("xfs: inode %d: btree root too small", ino)
	}
	level, numrecs := int(be.Uint16(fork[0:])), int(be.Uint16(fork[2:]))
	maxrecs := (len(fork) - 4) / 16
	if level == 0 || level > maxTreeDepth || numrecs > maxrecs {
		return nil, corrupt("xfs: inode %d: btree root level %d with %d records", ino, level, numrecs)
	}
	ptrs := fork[4+maxrecs*8:]
	visited := 0
	var exts []Extent
	for i := range numrecs {
		var err error
		if exts, err = x.btreeBlock(be.Uint64(ptrs[8*i:]), level-1, exts, &visited, ino); err != nil {
			return nil, err
		}
	}
	return exts, nil
}

func (x *xfs) btreeBlock(fsb uint64, level int, exts []Extent, visited *int, ino uint64) ([]Extent, error) {
	if *visited++; *visited > maxExtentNodes {
		return nil, corrupt("xfs: inode %d: btree of more than %d blocks", ino, maxExtentNodes)
	}
	off, err := x.fsbToByte(fsb)
	if err != nil {
		return nil, fmt.Errorf("xfs: inode %d: btree: %w", ino, err)
	}
	b := make([]byte, x.blockSize)
	if err := readFull(x.r, b, off); err != nil {
		return nil, fmt.Errorf("xfs: inode %d: btree block: %w", ino, err)
	}
	hdr, magic := xfsBmbtHdrV4, "BMAP"
	if x.v5 {
		hdr, magic = xfsBmbtHdrV5, "BMA3"
	}
	if string(b[0:4]) != magic || int(be.Uint16(b[4:])) != level {
		return nil, corrupt("xfs: inode %d: btree block %d: bad magic or level", ino, fsb)
	}
	numrecs := int(be.Uint16(b[6:]))
	if level == 0 {
		if hdr+numrecs*16 > len(b) {
			return nil, corrupt("xfs: inode %d: btree leaf %d: %d records", ino, fsb, numrecs)
		}
		return x.extentRecs(b[hdr:hdr+numrecs*16], exts, ino)
	}
	maxrecs := (len(b) - hdr) / 16
	if numrecs > maxrecs {
		return nil, corrupt("xfs: inode %d: btree node %d: %d records", ino, fsb, numrecs)
	}
	ptrs := b[hdr+maxrecs*8:]
	for i := range numrecs {
		if exts, err = x.btreeBlock(be.Uint64(ptrs[8*i:]), level-1, exts, visited, ino); err != nil {
			return nil, err
		}
	}
	return exts, nil
}

func (x *xfs) readDir(n *node) ([]DirEntry, error) {
	if n.isInl {
		return x.shortformDir(n)
	}
	// the data blocks lie below the leaf offset; a directory block may be
	// several filesystem blocks, split over extents: read each through a
	// view of those extents
	var data []Extent
	var total, end int64
	for _, e := range n.extents {
		if e.Logical >= leafOffsetXFS {
			continue // leaf, node and free-index blocks: no entries of their own
		}
		e.Length = min(e.Length, leafOffsetXFS-e.Logical)
		if total += e.Length; total > maxDirBytes {
			return nil, corrupt("xfs: directory inode %d: more than %d bytes", n.Ino, maxDirBytes)
		}
		data = append(data, e)
		end = max(end, e.Logical+e.Length)
	}
	sort.Slice(data, func(i, j int) bool { return data[i].Logical < data[j].Logical })
	view := &File{r: x.r, n: &node{Stat: Stat{Ino: n.Ino, Size: end}, extents: data}}
	buf := make([]byte, x.dirBlock)
	var out []DirEntry
	done := int64(-1) // the last directory block parsed
	for _, e := range data {
		for off := e.Logical &^ (x.dirBlock - 1); off < e.Logical+e.Length; off += x.dirBlock {
			if off <= done {
				continue
			}
			done = off
			clear(buf)
			if _, err := view.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("xfs: directory inode %d: %w", n.Ino, err)
			}
			var err error
			if out, err = x.dataBlock(buf, out, n.Ino); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// dataBlock parses one directory data block (block-form or data-form).
func (x *xfs) dataBlock(b []byte, out []DirEntry, ino uint64) ([]DirEntry, error) {
	hdr, end := xfsDirHdrV4, len(b)
	magic := string(b[0:4])
	switch magic {
	case "XDB3", "XDD3":
		hdr = xfsDirHdrV5
	case "XD2B", "XD2D":
	default:
		return nil, corrupt("xfs: directory inode %d: data block magic %q", ino, magic)
	}
	if magic == "XDB3" || magic == "XD2B" {
		// block form: leaf entries and a tail (count, stale) at the end
		count := int(be.Uint32(b[len(b)-8:]))
		end = len(b) - 8 - 8*count
		if count < 0 || end < hdr {
			return nil, corrupt("xfs: directory inode %d: block tail of %d entries", ino, count)
		}
	}
	for off := hdr; off+8 <= end; {
		if be.Uint16(b[off:]) == 0xffff { // unused space: freetag, length
			l := int(be.Uint16(b[off+2:]))
			if l < 8 || l&7 != 0 {
				return nil, corrupt("xfs: directory inode %d: free space of %d bytes", ino, l)
			}
			off += l
			continue
		}
		nameLen := int(b[off+8])
		l := 8 + 1 + nameLen + 2
		if x.ftype {
			l++
		}
		l = (l + 7) &^ 7
		if nameLen == 0 || off+l > end {
			return nil, corrupt("xfs: directory inode %d: entry at %d overflows", ino, off)
		}
		name := string(b[off+9 : off+9+nameLen])
		if name != "." && name != ".." {
			if len(out) >= maxDirEntries {
				return nil, corrupt("xfs: directory inode %d: more than %d entries", ino, maxDirEntries)
			}
			out = append(out, DirEntry{Name: name, Ino: be.Uint64(b[off:])})
		}
		off += l
	}
	return out, nil
}

// shortformDir parses a directory kept in the inode: count, count of
// 8-byte inode numbers, parent, then entries.
func (x *xfs) shortformDir(n *node) ([]DirEntry, error) {
	b := n.inline
	if len(b) < 2 {
		return nil, corrupt("xfs: directory inode %d: short form header", n.Ino)
	}
	count, i8 := int(b[0]), b[1]
	inoLen := 4
	if i8 != 0 {
		inoLen, count = 8, int(i8)
	}
	off := 2 + inoLen
	var out []DirEntry
	for range count {
		if off+3 > len(b) {
			return nil, corrupt("xfs: directory inode %d: short form entry overflows", n.Ino)
		}
		nameLen := int(b[off])
		l := 3 + nameLen + inoLen
		if x.ftype {
			l++
		}
		if nameLen == 0 || off+l > len(b) {
			return nil, corrupt("xfs: directory inode %d: short form entry overflows", n.Ino)
		}
		name := string(b[off+3 : off+3+nameLen])
		ip := b[off+l-inoLen : off+l]
		var child uint64
		if inoLen == 8 {
			child = be.Uint64(ip)
		} else {
			child = uint64(be.Uint32(ip))
		}
		out = append(out, DirEntry{Name: name, Ino: child})
		off += l
	}
	return out, nil
}

func (x *xfs) readlink(n *node) (string, error) {
	if n.Size > maxSymlink {
		return "", corrupt("xfs: symlink inode %d: %d bytes", n.Ino, n.Size)
	}
	if n.isInl || !x.v5 {
		b, err := readNode(x.r, n, maxSymlink)
		return string(b), err
	}
	// v5 remote symlink blocks each start with a header (magic, offset,
	// byte count, …)
	var out []byte
	for _, e := range n.extents {
		buf := make([]byte, e.Length)
		if err := readFull(x.r, buf, e.Physical); err != nil {
			return "", fmt.Errorf("xfs: symlink inode %d: %w", n.Ino, err)
		}
		for off := int64(0); off < int64(len(buf)); off += x.blockSize {
			blk := buf[off:min(off+x.blockSize, int64(len(buf)))]
			if len(blk) < xfsSymlinkHdr || string(blk[0:4]) != "XSLM" {
				return "", corrupt("xfs: symlink inode %d: block without header", n.Ino)
			}
			cnt := int(be.Uint32(blk[8:]))
			if cnt > len(blk)-xfsSymlinkHdr || len(out)+cnt > maxSymlink {
				return "", corrupt("xfs: symlink inode %d: block of %d bytes", n.Ino, cnt)
			}
			out = append(out, blk[xfsSymlinkHdr:xfsSymlinkHdr+cnt]...)
		}
	}
	if int64(len(out)) > n.Size {
		out = out[:n.Size]
	}
	return string(out), nil
}
