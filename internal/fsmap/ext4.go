package fsmap

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sort"
)

// ext4 superblock fields and feature flags (see the kernel's ext4.h).
const (
	extStateValid  = 0x1
	extStateErrors = 0x2

	extCompatSparse2 = 0x200

	extIncompatRecover    = 0x4
	extIncompat64Bit      = 0x80
	extIncompatFlexBG     = 0x200
	extIncompatSupported  = 0x2 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x2000 | 0x4000 | 0x8000 | 0x10000 | 0x20000
	extROSparse           = 0x1
	extROGDTCsum          = 0x10
	extROMetadataCsum     = 0x400
	extROUnsupported      = 0x80 | 0x200 // snapshots, bigalloc
	extROKnown            = 0x1FFFF
	extBlockUninit        = 0x2
	extMaxGroups          = 1 << 20 // 128 TiB of 4 KiB blocks; larger is refused
	extMaxGDTBytes        = 64 << 20
	extBitmapReadMaxBytes = 1 << 20
)

// extFS is a parsed ext2/3/4 superblock.
type extFS struct {
	r          io.ReaderAt
	size       int64
	bs         int64
	blocks     uint64
	firstData  uint64
	perGroup   uint64
	groups     uint64
	descSize   int64
	gdtBlocks  uint64
	resGDT     uint64
	itBlocks   uint64
	csum       bool
	sparse     bool
	sparse2    bool
	backupBGs  [2]uint64
	incompat64 bool
}

// extGroup is one group descriptor.
type extGroup struct {
	bitmap, ibitmap, itable uint64
	free                    uint64
	flags                   uint16
}

// ext4Free returns the free blocks of an ext2/3/4 volume as byte ranges.
func ext4Free(ctx context.Context, r io.ReaderAt, size int64) ([]Range, error) {
	fs, err := readExtSuper(r, size)
	if err != nil {
		return nil, err
	}
	gs, err := fs.readGroups()
	if err != nil {
		return nil, err
	}
	bitmaps, err := fs.readBitmaps(ctx, gs)
	if err != nil {
		return nil, err
	}
	var free []blockRun
	for g := range gs {
		runs, err := fs.groupFree(uint64(g), gs, bitmaps[g])
		if err != nil {
			return nil, err
		}
		if free = append(free, runs...); len(free) > maxRuns {
			return nil, fmt.Errorf("%w: free space in more than %d pieces", errDamaged, maxRuns)
		}
	}
	free = subtractRuns(free, fs.metadata(gs))
	out := make([]Range, 0, len(free))
	for _, b := range free {
		out = append(out, Range{Offset: int64(b.start) * fs.bs, Length: int64(b.n) * fs.bs, Reason: ReasonFree})
	}
	return out, nil
}

func readExtSuper(r io.ReaderAt, size int64) (*extFS, error) {
	sb := make([]byte, 1024)
	if err := readFull(r, size, sb, 1024); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	if le.Uint16(sb[0x38:]) != 0xEF53 {
		return nil, fmt.Errorf("%w: no ext superblock", errDamaged)
	}
	state := le.Uint16(sb[0x3A:])
	compat, incompat, ro := le.Uint32(sb[0x5C:]), le.Uint32(sb[0x60:]), le.Uint32(sb[0x64:])
	switch {
	case incompat&extIncompatRecover != 0:
		return nil, fmt.Errorf("%w: the journal needs recovery (file system in use, not frozen)", errDamaged)
	case state&extStateValid == 0 || state&extStateErrors != 0:
		return nil, fmt.Errorf("%w: not cleanly unmounted or has errors (state %#x)", errDamaged, state)
	case incompat&^extIncompatSupported != 0:
		return nil, fmt.Errorf("%w: unsupported incompatible features %#x", errDamaged, incompat&^extIncompatSupported)
	case ro&extROUnsupported != 0 || ro&^extROKnown != 0:
		return nil, fmt.Errorf("%w: unsupported read-only features %#x (bigalloc, snapshots)", errDamaged, ro)
	}
	logBS := le.Uint32(sb[0x18:])
	if logBS > 6 {
		return nil, fmt.Errorf("%w: block size 2^%d KiB", errDamaged, logBS)
	}
	fs := &extFS{r: r, size: size, bs: 1024 << logBS, incompat64: incompat&extIncompat64Bit != 0,
		csum: ro&(extROGDTCsum|extROMetadataCsum) != 0, sparse: ro&extROSparse != 0, sparse2: compat&extCompatSparse2 != 0}
	fs.blocks = uint64(le.Uint32(sb[0x04:]))
	fs.descSize = 32
	if fs.incompat64 {
		fs.blocks |= uint64(le.Uint32(sb[0x150:])) << 32
		fs.descSize = int64(le.Uint16(sb[0xFE:]))
		if fs.descSize < 64 || fs.descSize > 1024 || fs.descSize&(fs.descSize-1) != 0 {
			return nil, fmt.Errorf("%w: descriptor size %d", errDamaged, fs.descSize)
		}
	}
	fs.firstData = uint64(le.Uint32(sb[0x14:]))
	fs.perGroup = uint64(le.Uint32(sb[0x20:]))
	fs.resGDT = uint64(le.Uint16(sb[0xCE:]))
	fs.backupBGs = [2]uint64{uint64(le.Uint32(sb[0x24C:])), uint64(le.Uint32(sb[0x250:]))}
	if err := fs.geometry(sb); err != nil {
		return nil, err
	}
	return fs, nil
}

// geometry derives and checks the group layout.
func (fs *extFS) geometry(sb []byte) error {
	le := binary.LittleEndian
	if fs.blocks == 0 || fs.blocks > uint64(fs.size/fs.bs) {
		return fmt.Errorf("%w: %d blocks of %d bytes do not fit a volume of %d bytes", errDamaged, fs.blocks, fs.bs, fs.size)
	}
	if fs.firstData >= fs.blocks || fs.firstData > 1 {
		return fmt.Errorf("%w: first data block %d", errDamaged, fs.firstData)
	}
	if fs.perGroup < 8 || fs.perGroup > uint64(8*fs.bs) || fs.perGroup%8 != 0 {
		return fmt.Errorf("%w: %d blocks per group", errDamaged, fs.perGroup)
	}
	fs.groups = (fs.blocks - fs.firstData + fs.perGroup - 1) / fs.perGroup
	if fs.groups > extMaxGroups || fs.groups*uint64(fs.descSize) > extMaxGDTBytes {
		return fmt.Errorf("%w: %d groups (at most %d are read)", errDamaged, fs.groups, extMaxGroups)
	}
	fs.gdtBlocks = (fs.groups*uint64(fs.descSize) + uint64(fs.bs) - 1) / uint64(fs.bs)
	inodeSize := uint64(128)
	if le.Uint32(sb[0x4C:]) >= 1 {
		inodeSize = uint64(le.Uint16(sb[0x58:]))
	}
	perGroupInodes := uint64(le.Uint32(sb[0x28:]))
	if inodeSize < 128 || inodeSize > uint64(fs.bs) || inodeSize&(inodeSize-1) != 0 || perGroupInodes == 0 || perGroupInodes > uint64(8*fs.bs) {
		return fmt.Errorf("%w: inode size %d, %d inodes per group", errDamaged, inodeSize, perGroupInodes)
	}
	fs.itBlocks = (perGroupInodes*inodeSize + uint64(fs.bs) - 1) / uint64(fs.bs)
	return nil
}

// readGroups reads and checks every group descriptor.
func (fs *extFS) readGroups() ([]extGroup, error) {
	gdt := make([]byte, fs.groups*uint64(fs.descSize))
	if err := readFull(fs.r, fs.size, gdt, int64(fs.firstData+1)*fs.bs); err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	gs := make([]extGroup, fs.groups)
	for g := range gs {
		d := gdt[int64(g)*fs.descSize:][:fs.descSize]
		e := extGroup{bitmap: uint64(le.Uint32(d[0:])), ibitmap: uint64(le.Uint32(d[4:])), itable: uint64(le.Uint32(d[8:])),
			free: uint64(le.Uint16(d[0xC:])), flags: le.Uint16(d[0x12:])}
		if fs.descSize >= 64 {
			e.bitmap |= uint64(le.Uint32(d[0x20:])) << 32
			e.ibitmap |= uint64(le.Uint32(d[0x24:])) << 32
			e.itable |= uint64(le.Uint32(d[0x28:])) << 32
			e.free |= uint64(le.Uint16(d[0x2C:])) << 16
		}
		_, n := fs.groupSpan(uint64(g))
		if !fs.inFS(e.bitmap, 1) || !fs.inFS(e.ibitmap, 1) || !fs.inFS(e.itable, fs.itBlocks) || e.free > n {
			return nil, fmt.Errorf("%w: group %d descriptor out of range", errDamaged, g)
		}
		gs[g] = e
	}
	return gs, nil
}

func (fs *extFS) inFS(block, n uint64) bool {
	return block >= fs.firstData && block < fs.blocks && n <= fs.blocks-block
}

// groupSpan returns the first block of group g and its number of blocks.
func (fs *extFS) groupSpan(g uint64) (start, n uint64) {
	start = fs.firstData + g*fs.perGroup
	return start, min(fs.perGroup, fs.blocks-start)
}

func (fs *extFS) uninit(e extGroup) bool { return fs.csum && e.flags&extBlockUninit != 0 }

// readBitmaps reads the block bitmap of every initialised group, in runs
// of adjacent bitmaps (flex_bg puts them side by side).
func (fs *extFS) readBitmaps(ctx context.Context, gs []extGroup) ([][]byte, error) {
	out := make([][]byte, len(gs))
	order := make([]int, 0, len(gs))
	for g, e := range gs {
		if !fs.uninit(e) {
			order = append(order, g)
		}
	}
	sort.Slice(order, func(i, j int) bool { return gs[order[i]].bitmap < gs[order[j]].bitmap })
	maxRun := max(1, extBitmapReadMaxBytes/int(fs.bs))
	for i := 0; i < len(order); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		j := i + 1
		for j < len(order) && j-i < maxRun && gs[order[j]].bitmap == gs[order[j-1]].bitmap+1 {
			j++
		}
		buf := make([]byte, int64(j-i)*fs.bs)
		if err := readFull(fs.r, fs.size, buf, int64(gs[order[i]].bitmap)*fs.bs); err != nil {
			return nil, err
		}
		for k := i; k < j; k++ {
			out[order[k]] = buf[int64(k-i)*fs.bs:][:fs.bs]
		}
		i = j
	}
	return out, nil
}

// hasSuper reports whether group g holds a superblock and descriptor copy.
func (fs *extFS) hasSuper(g uint64) bool {
	switch {
	case g == 0:
		return true
	case fs.sparse2:
		return g == fs.backupBGs[0] || g == fs.backupBGs[1]
	case g == 1 || !fs.sparse:
		return true
	case g%2 == 0:
		return false
	}
	return isPower(g, 3) || isPower(g, 5) || isPower(g, 7)
}

func isPower(g, base uint64) bool {
	p := base
	for p < g {
		p *= base
	}
	return p == g
}

// baseMeta is the superblock, descriptors and reserved descriptor blocks
// at the start of a group that has a copy.
func (fs *extFS) baseMeta(g uint64) uint64 {
	if !fs.hasSuper(g) {
		return 0
	}
	return 1 + fs.gdtBlocks + fs.resGDT
}

// groupFree returns the free runs of group g, from its bitmap or, for a
// BLOCK_UNINIT group, from the bitmap the kernel would make for it. The
// count of free blocks must match the descriptor's.
func (fs *extFS) groupFree(g uint64, gs []extGroup, bitmap []byte) ([]blockRun, error) {
	start, n := fs.groupSpan(g)
	if bitmap == nil {
		bitmap = fs.initBitmap(g, gs[g])
	}
	var runs []blockRun
	var free uint64
	for i := uint64(0); i < n; {
		if bitmap[i/8]&(1<<(i%8)) != 0 {
			i++
			continue
		}
		j := i + 1
		for j < n && bitmap[j/8]&(1<<(j%8)) == 0 {
			j++
		}
		runs = append(runs, blockRun{start: start + i, n: j - i})
		free += j - i
		i = j
	}
	if free != gs[g].free {
		return nil, fmt.Errorf("%w: group %d bitmap has %d free blocks, its descriptor says %d", errDamaged, g, free, gs[g].free)
	}
	return runs, nil
}

// initBitmap is ext4_init_block_bitmap: the base metadata and the group's
// own bitmaps and inode table where they lie inside the group.
func (fs *extFS) initBitmap(g uint64, e extGroup) []byte {
	b := make([]byte, fs.bs)
	start, n := fs.groupSpan(g)
	set := func(block, count uint64) {
		for k := uint64(0); k < count; k++ {
			if block+k >= start && block+k < start+n {
				i := block + k - start
				b[i/8] |= 1 << (i % 8)
			}
		}
	}
	set(start, fs.baseMeta(g))
	set(e.bitmap, 1)
	set(e.ibitmap, 1)
	set(e.itable, fs.itBlocks)
	return b
}

// metadata lists every block the file system's structure occupies: kept
// whatever the bitmaps say.
func (fs *extFS) metadata(gs []extGroup) []blockRun {
	m := make([]blockRun, 0, 4*len(gs))
	for g, e := range gs {
		start, _ := fs.groupSpan(uint64(g))
		if b := fs.baseMeta(uint64(g)); b > 0 {
			m = append(m, blockRun{start: start, n: b})
		}
		m = append(m, blockRun{e.bitmap, 1}, blockRun{e.ibitmap, 1}, blockRun{e.itable, fs.itBlocks})
	}
	return m
}

// blockRun is n blocks from start.
type blockRun struct{ start, n uint64 }

// subtractRuns removes every block of cut from runs (sorted, disjoint);
// cut may be in any order and overlap.
func subtractRuns(runs, cut []blockRun) []blockRun {
	sort.Slice(cut, func(i, j int) bool { return cut[i].start < cut[j].start })
	merged := make([]blockRun, 0, len(cut))
	for _, c := range cut {
		if n := len(merged); n > 0 && c.start <= merged[n-1].start+merged[n-1].n {
			merged[n-1].n = max(merged[n-1].n, c.start+c.n-merged[n-1].start)
			continue
		}
		merged = append(merged, c)
	}
	var out []blockRun
	k := 0
	for _, r := range runs {
		s, e := r.start, r.start+r.n
		for k < len(merged) && merged[k].start+merged[k].n <= s {
			k++
		}
		for j := k; j < len(merged) && merged[j].start < e && s < e; j++ {
			if merged[j].start > s {
				out = append(out, blockRun{s, merged[j].start - s})
			}
			s = max(s, merged[j].start+merged[j].n)
		}
		if s < e {
			out = append(out, blockRun{s, e - s})
		}
	}
	return out
}
