package guestfs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// ext4 on-disk constants (see the kernel's Documentation/filesystems/ext4).
const (
	ext4Magic         = 0xEF53
	ext4RootIno       = 2
	ext4IncFiletype   = 0x2
	ext4IncMetaBG     = 0x10
	ext4Inc64Bit      = 0x80
	ext4IncEncrypt    = 0x10000
	ext4FlagExtents   = 0x80000
	ext4FlagInline    = 0x10000000
	ext4FlagEncrypt   = 0x800
	ext4FlagHugeFile  = 0x40000
	ext4ExtentMagic   = 0xF30A
	ext4XattrMagic    = 0xEA020000
	ext4InlineBlock   = 60 // bytes of i_block
	ext4GoodOldInode  = 128
	ext4GoodOldFirst  = 11
	ext4RoHugeFile    = 0x8
	ext4UninitExtent  = 32768
	ext4XattrIdxSys   = 7
	ext4DirEntryFixed = 8
)

type ext4 struct {
	r          io.ReaderAt
	volSize    int64
	blockSize  int64
	inodeSize  int64
	ipg        uint32 // inodes per group
	inodes     uint32
	groups     uint32
	descSize   int64
	descStart  int64 // byte offset of the group descriptor table
	filetype   bool  // directory entries carry a file type byte
	hugeFileRO bool
}

func openExt4(r io.ReaderAt, volSize int64) (*ext4, error) {
	sb := make([]byte, 1024)
	if err := readFull(r, sb, 1024); err != nil {
		return nil, fmt.Errorf("ext4 superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint16(sb[56:]) != ext4Magic {
		return nil, corrupt("ext4: no superblock magic")
	}
	logBlock := le.Uint32(sb[24:])
	if logBlock > 6 {
		return nil, corrupt("ext4: block size 2^(10+%d)", logBlock)
	}
	e := &ext4{r: r, volSize: volSize, blockSize: 1024 << logBlock}
	e.inodes = le.Uint32(sb[0:])
	e.ipg = le.Uint32(sb[40:])
	bpg := le.Uint32(sb[32:])
	firstData := int64(le.Uint32(sb[20:]))
	incompat := le.Uint32(sb[96:])
	e.filetype = incompat&ext4IncFiletype != 0
	e.hugeFileRO = le.Uint32(sb[100:])&ext4RoHugeFile != 0
	e.inodeSize = ext4GoodOldInode
	if le.Uint32(sb[76:]) >= 1 {
		e.inodeSize = int64(le.Uint16(sb[88:]))
	}
	e.descSize = 32
	if incompat&ext4Inc64Bit != 0 {
		e.descSize = int64(le.Uint16(sb[254:]))
	}
	switch {
	case e.ipg == 0 || bpg == 0 || e.inodes == 0:
		return nil, corrupt("ext4: zero inodes or blocks per group")
	case e.inodeSize < ext4GoodOldInode || e.inodeSize > e.blockSize || e.inodeSize&(e.inodeSize-1) != 0:
		return nil, corrupt("ext4: inode size %d", e.inodeSize)
	case e.descSize < 32 || e.descSize > 1024 || e.descSize&(e.descSize-1) != 0:
		return nil, corrupt("ext4: group descriptor size %d", e.descSize)
	case incompat&ext4IncMetaBG != 0:
		return nil, fmt.Errorf("%w: ext4 meta_bg layout", ErrUnsupported)
	}
	e.groups = (e.inodes + e.ipg - 1) / e.ipg
	e.descStart = (firstData + 1) * e.blockSize
	if e.descStart+int64(e.groups)*e.descSize > volSize {
		return nil, corrupt("ext4: %d group descriptors reach past the volume", e.groups)
	}
	return e, nil
}

func (e *ext4) root() uint64 { return ext4RootIno }

// inodeBytes reads the on-disk inode ino.
func (e *ext4) inodeBytes(ino uint64) ([]byte, error) {
	if ino == 0 || ino > uint64(e.inodes) {
		return nil, corrupt("ext4: inode number %d out of range (1–%d)", ino, e.inodes)
	}
	group := (ino - 1) / uint64(e.ipg)
	index := (ino - 1) % uint64(e.ipg)
	desc := make([]byte, e.descSize)
	if err := readFull(e.r, desc, e.descStart+int64(group)*e.descSize); err != nil {
		return nil, fmt.Errorf("ext4 group descriptor %d: %w", group, err)
	}
	table := uint64(binary.LittleEndian.Uint32(desc[8:]))
	if e.descSize >= 64 {
		table |= uint64(binary.LittleEndian.Uint32(desc[0x28:])) << 32
	}
	if table == 0 || table >= uint64(e.volSize/e.blockSize) {
		return nil, corrupt("ext4: inode %d: inode table at block %d lies outside the volume", ino, table)
	}
	off := table*uint64(e.blockSize) + index*uint64(e.inodeSize)
	if off+uint64(e.inodeSize) > uint64(e.volSize) {
		return nil, corrupt("ext4: inode %d lies outside the volume (table block %d)", ino, table)
	}
	b := make([]byte, e.inodeSize)
	if err := readFull(e.r, b, int64(off)); err != nil {
		return nil, fmt.Errorf("ext4 inode %d: %w", ino, err)
	}
	return b, nil
}

func (e *ext4) inode(ino uint64) (*node, error) {
	b, err := e.inodeBytes(ino)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	mode := uint32(le.Uint16(b[0:]))
	n := &node{Stat: Stat{
		Ino:   ino,
		Perm:  mode,
		Mode:  goMode(mode),
		UID:   uint32(le.Uint16(b[2:])) | uint32(le.Uint16(b[120:]))<<16,
		GID:   uint32(le.Uint16(b[24:])) | uint32(le.Uint16(b[122:]))<<16,
		Size:  int64(uint64(le.Uint32(b[4:])) | uint64(le.Uint32(b[108:]))<<32),
		Nlink: uint32(le.Uint16(b[26:])),
	}}
	extra := int64(0)
	if e.inodeSize > ext4GoodOldInode {
		extra = int64(le.Uint16(b[128:]))
		if extra > e.inodeSize-ext4GoodOldInode || extra&3 != 0 {
			return nil, corrupt("ext4: inode %d: extra size %d", ino, extra)
		}
	}
	n.Ctime = ext4Time(b, 12, 132, extra)
	n.Mtime = ext4Time(b, 16, 136, extra)
	n.Atime = ext4Time(b, 8, 140, extra)
	if n.Size < 0 || n.Size > maxFileSize {
		return nil, corrupt("ext4: inode %d: size %d", ino, n.Size)
	}
	flags := le.Uint32(b[32:])
	if flags&ext4FlagEncrypt != 0 {
		return nil, fmt.Errorf("%w: ext4 inode %d is encrypted", ErrUnsupported, ino)
	}
	iblock := b[40 : 40+ext4InlineBlock]
	kind := n.Mode.Type()
	switch {
	case kind == fs.ModeDevice || kind == fs.ModeDevice|fs.ModeCharDevice:
		n.Rdev = ext4Rdev(iblock)
		n.Size = 0
		return n, nil
	case kind == fs.ModeNamedPipe || kind == fs.ModeSocket:
		n.Size = 0
		return n, nil
	case flags&ext4FlagInline != 0:
		data, err := e.inlineData(b, extra, ino)
		if err != nil {
			return nil, err
		}
		if int64(len(data)) > n.Size {
			data = data[:n.Size]
		}
		n.inline, n.isInl = data, true
		return n, nil
	case kind == fs.ModeSymlink && flags&ext4FlagExtents == 0 && n.Size < ext4InlineBlock:
		n.inline, n.isInl = append([]byte(nil), iblock[:n.Size]...), true // fast symlink
		return n, nil
	}
	var exts []Extent
	if flags&ext4FlagExtents != 0 {
		exts, err = e.extentTree(iblock, ino)
	} else {
		exts, err = e.blockMap(iblock, n.Size, ino)
	}
	if err != nil {
		return nil, err
	}
	if n.extents, err = finishExtents(exts, n.Size, e.volSize, ino); err != nil {
		return nil, err
	}
	return n, nil
}

// ext4Time decodes a timestamp: 32 signed seconds at lo, and when the
// inode's extra fields reach it, epoch bits and nanoseconds at hi.
func ext4Time(b []byte, lo, hi int, extra int64) time.Time {
	sec := int64(int32(binary.LittleEndian.Uint32(b[lo:])))
	var nsec int64
	if int64(hi+4) <= ext4GoodOldInode+extra && hi+4 <= len(b) {
		x := binary.LittleEndian.Uint32(b[hi:])
		sec += int64(x&3) << 32
		nsec = int64(x >> 2)
		if nsec > 999999999 {
			nsec = 0
		}
	}
	return time.Unix(sec, nsec).UTC()
}

// ext4Rdev decodes a device number from i_block (old or new encoding) into
// the Linux dev_t layout.
func ext4Rdev(iblock []byte) uint32 {
	le := binary.LittleEndian
	if old := le.Uint32(iblock[0:]); old != 0 {
		return (old>>8&0xfff)<<8 | old&0xff
	}
	nw := le.Uint32(iblock[4:])
	return nw
}

// goMode turns a Linux st_mode into a Go fs.FileMode.
func goMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	switch m & 0o170000 {
	case 0o040000:
		mode |= fs.ModeDir
	case 0o120000:
		mode |= fs.ModeSymlink
	case 0o060000:
		mode |= fs.ModeDevice
	case 0o020000:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case 0o010000:
		mode |= fs.ModeNamedPipe
	case 0o140000:
		mode |= fs.ModeSocket
	case 0o100000:
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}

// extentTree walks an inode's extent tree (root in i_block).
func (e *ext4) extentTree(root []byte, ino uint64) ([]Extent, error) {
	var exts []Extent
	visited := 0
	var walk func(b []byte, depth int, want int) error
	walk = func(b []byte, level, want int) error {
		le := binary.LittleEndian
		if len(b) < 12 || le.Uint16(b[0:]) != ext4ExtentMagic {
			return corrupt("ext4: inode %d: bad extent header", ino)
		}
		entries, depth := int(le.Uint16(b[2:])), int(le.Uint16(b[6:]))
		if depth > maxTreeDepth || (want >= 0 && depth != want) {
			return corrupt("ext4: inode %d: extent tree depth %d", ino, depth)
		}
		if 12+12*entries > len(b) {
			return corrupt("ext4: inode %d: %d extent entries overflow their node", ino, entries)
		}
		for i := range entries {
			ent := b[12+12*i : 24+12*i]
			if depth == 0 {
				length := int64(le.Uint16(ent[4:]))
				if length > ext4UninitExtent {
					continue // unwritten: reads as zeros
				}
				start := int64(le.Uint16(ent[6:]))<<32 | int64(le.Uint32(ent[8:]))
				if len(exts) >= maxExtents {
					return corrupt("ext4: inode %d: more than %d extents", ino, maxExtents)
				}
				exts = append(exts, Extent{
					Logical:  int64(le.Uint32(ent[0:])) * e.blockSize,
					Physical: start * e.blockSize,
					Length:   length * e.blockSize,
				})
				continue
			}
			if visited++; visited > maxExtentNodes {
				return corrupt("ext4: inode %d: extent tree of more than %d nodes", ino, maxExtentNodes)
			}
			leaf := int64(le.Uint16(ent[8:]))<<32 | int64(le.Uint32(ent[4:]))
			child, err := e.block(leaf)
			if err != nil {
				return fmt.Errorf("ext4: inode %d: extent node: %w", ino, err)
			}
			if err := walk(child, depth-1, depth-1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(root, 0, -1); err != nil {
		return nil, err
	}
	return exts, nil
}

// block reads filesystem block n.
func (e *ext4) block(n int64) ([]byte, error) {
	if n <= 0 || n > e.volSize/e.blockSize-1 {
		return nil, corrupt("ext4: block %d outside the volume", n)
	}
	b := make([]byte, e.blockSize)
	if err := readFull(e.r, b, n*e.blockSize); err != nil {
		return nil, err
	}
	return b, nil
}

// blockMap reads an ext2/3 block map: 12 direct, then single, double and
// triple indirect blocks; zero pointers are holes.
//
// ext2/3 never shares a block, so a map that names one indirect block
// twice, or whose data blocks add up to more than the volume, is damage:
// without these checks one small indirect block named 16K times at each
// level made a reader visit 4G pointers (and read 16 GiB) for one inode.
// With them, the indirect blocks one file makes the reader visit are
// distinct blocks of the volume (at most maxExtentNodes of them), and the
// walk stops at the file's size: a file of size S is read through at most
// ceil(S/blocksize) data pointers.
func (e *ext4) blockMap(iblock []byte, size int64, ino uint64) ([]Extent, error) {
	m := &blockMapper{e: e, ino: ino, nblocks: (size + e.blockSize - 1) / e.blockSize,
		perBlock: e.blockSize / 4, seen: map[uint32]bool{}}
	le := binary.LittleEndian
	for i := 0; i < 12 && m.next < m.nblocks; i++ {
		if err := m.add(le.Uint32(iblock[4*i:])); err != nil {
			return nil, err
		}
	}
	for level := 0; level < 3 && m.next < m.nblocks; level++ {
		if err := m.indirect(le.Uint32(iblock[48+4*level:]), level); err != nil {
			return nil, err
		}
	}
	return m.exts, nil
}

// blockMapper is one blockMap walk.
type blockMapper struct {
	e        *ext4
	ino      uint64
	nblocks  int64 // file blocks the size covers
	perBlock int64 // pointers in one indirect block
	next     int64 // next file block number
	mapped   int64 // bytes of data blocks found
	seen     map[uint32]bool
	exts     []Extent
}

// add maps the next file block to block phys (0: a hole).
func (m *blockMapper) add(phys uint32) error {
	defer func() { m.next++ }()
	if phys == 0 {
		return nil
	}
	bs := m.e.blockSize
	if m.mapped += bs; m.mapped > m.e.volSize {
		return corrupt("ext4: inode %d: block map names more data blocks than the volume holds", m.ino)
	}
	x := Extent{Logical: m.next * bs, Physical: int64(phys) * bs, Length: bs}
	if k := len(m.exts); k > 0 && m.exts[k-1].Logical+m.exts[k-1].Length == x.Logical && m.exts[k-1].Physical+m.exts[k-1].Length == x.Physical {
		m.exts[k-1].Length += x.Length
		return nil
	}
	if len(m.exts) >= maxExtents {
		return corrupt("ext4: inode %d: more than %d extents", m.ino, maxExtents)
	}
	m.exts = append(m.exts, x)
	return nil
}

// indirect walks the indirect block ptr, whose pointers are data blocks
// (level 0) or indirect blocks of the level below.
func (m *blockMapper) indirect(ptr uint32, level int) error {
	span := m.perBlock // file blocks under ptr
	for range level {
		span *= m.perBlock
	}
	if ptr == 0 {
		m.next += span
		return nil
	}
	if m.seen[ptr] {
		return corrupt("ext4: inode %d: block map names indirect block %d twice", m.ino, ptr)
	}
	if len(m.seen) >= maxExtentNodes {
		return corrupt("ext4: inode %d: block map of more than %d indirect blocks", m.ino, maxExtentNodes)
	}
	m.seen[ptr] = true
	b, err := m.e.block(int64(ptr))
	if err != nil {
		return fmt.Errorf("ext4: inode %d: indirect block: %w", m.ino, err)
	}
	le := binary.LittleEndian
	for i := int64(0); i < m.perBlock && m.next < m.nblocks; i++ {
		p := le.Uint32(b[4*i:])
		if level == 0 {
			err = m.add(p)
		} else {
			err = m.indirect(p, level-1)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// inlineData returns i_block followed by the system.data attribute's value.
func (e *ext4) inlineData(b []byte, extra int64, ino uint64) ([]byte, error) {
	data := append([]byte(nil), b[40:40+ext4InlineBlock]...)
	start := ext4GoodOldInode + extra
	if start+4 > int64(len(b)) || binary.LittleEndian.Uint32(b[start:]) != ext4XattrMagic {
		return data, nil
	}
	area := b[start+4:]
	for off := 0; off+16 <= len(area); {
		le := binary.LittleEndian
		nameLen := int(area[off])
		if nameLen == 0 && area[off+1] == 0 && le.Uint16(area[off+2:]) == 0 && le.Uint32(area[off+4:]) == 0 {
			break // end of entries
		}
		idx := area[off+1]
		voff, vsize := int(le.Uint16(area[off+2:])), int(le.Uint32(area[off+8:]))
		if off+16+nameLen > len(area) {
			return nil, corrupt("ext4: inode %d: in-inode attribute overflows", ino)
		}
		name := area[off+16 : off+16+nameLen]
		if idx == ext4XattrIdxSys && bytes.Equal(name, []byte("data")) {
			if voff+vsize > len(area) || vsize < 0 {
				return nil, corrupt("ext4: inode %d: inline data attribute overflows", ino)
			}
			return append(data, area[voff:voff+vsize]...), nil
		}
		off += (16 + nameLen + 3) &^ 3
	}
	return data, nil
}

func (e *ext4) readDir(n *node) ([]DirEntry, error) {
	if n.isInl {
		return e.inlineDir(n)
	}
	data, err := readNode(e.r, n, maxDirBytes)
	if err != nil {
		return nil, err
	}
	var out []DirEntry
	for blk := int64(0); blk < int64(len(data)); blk += e.blockSize {
		end := min(blk+e.blockSize, int64(len(data)))
		if out, err = e.dirents(data[blk:end], out, n.Ino); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// inlineDir reads a directory kept in its inode: the parent's inode
// number, then entries in the rest of i_block and in system.data.
func (e *ext4) inlineDir(n *node) ([]DirEntry, error) {
	if len(n.inline) < 4 {
		return nil, nil
	}
	var out []DirEntry
	var err error
	first := n.inline[4:min(len(n.inline), ext4InlineBlock)]
	if out, err = e.dirents(first, out, n.Ino); err != nil {
		return nil, err
	}
	if len(n.inline) > ext4InlineBlock {
		return e.dirents(n.inline[ext4InlineBlock:], out, n.Ino)
	}
	return out, nil
}

// dirents parses one block of linear directory entries.
func (e *ext4) dirents(b []byte, out []DirEntry, ino uint64) ([]DirEntry, error) {
	le := binary.LittleEndian
	for off := 0; off+ext4DirEntryFixed <= len(b); {
		child := le.Uint32(b[off:])
		recLen := int(le.Uint16(b[off+4:]))
		nameLen := int(b[off+6])
		if !e.filetype {
			nameLen |= int(b[off+7]) << 8
		}
		if recLen < ext4DirEntryFixed || recLen&3 != 0 || off+recLen > len(b) || ext4DirEntryFixed+nameLen > recLen {
			return nil, corrupt("ext4: directory inode %d: bad entry at %d (record %d, name %d)", ino, off, recLen, nameLen)
		}
		name := string(b[off+8 : off+8+nameLen])
		if child != 0 && name != "." && name != ".." && nameLen > 0 {
			if len(out) >= maxDirEntries {
				return nil, corrupt("ext4: directory inode %d: more than %d entries", ino, maxDirEntries)
			}
			out = append(out, DirEntry{Name: name, Ino: uint64(child)})
		}
		off += recLen
	}
	return out, nil
}

func (e *ext4) readlink(n *node) (string, error) {
	if n.Size > maxSymlink {
		return "", corrupt("ext4: symlink inode %d: %d bytes", n.Ino, n.Size)
	}
	b, err := readNode(e.r, n, maxSymlink)
	if err != nil {
		return "", err
	}
	return string(b), nil
}
