package file

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// L1/L2 entry fields.
const (
	qcow2OffsetMask     = 0x00fffffffffffe00
	qcow2CompressedFlag = 1 << 62
	qcow2ZeroFlag       = 1
)

// qcow2Layer is one image of a backing chain, read for its own allocation
// map (what it stores itself, regardless of its backing file).
type qcow2Layer struct {
	ra       io.ReaderAt
	file     *os.File // ra as a file, to find holes in raw layers; may be nil
	fileSize int64
	img      *qcow2Image // nil for a raw backing file
}

// allocated reports the ranges of [0,limit) that this layer stores, in
// ascending order.
func (l *qcow2Layer) allocated(ctx context.Context, limit int64, add func(source.Extent)) error {
	if l.img == nil {
		return l.rawAllocated(ctx, limit, add)
	}
	limit = min(limit, int64(l.img.size))
	l1, err := l.readL1(limit)
	if err != nil {
		return err
	}
	buf := make([]byte, l.img.clusterSize())
	for i, entry := range l1 {
		if err := ctx.Err(); err != nil {
			return err
		}
		base := int64(i) * l.img.l1Span()
		clip := func(e source.Extent) {
			e.Offset += base
			e.Length = min(e.End(), limit) - e.Offset
			if e.Length > 0 {
				add(e)
			}
		}
		if err := l.l2Allocated(entry, buf, clip); err != nil {
			return fmt.Errorf("L1 entry %d: %w", i, err)
		}
	}
	return nil
}

// rawAllocated is the allocation of a raw backing file.
func (l *qcow2Layer) rawAllocated(ctx context.Context, limit int64, add func(source.Extent)) error {
	end := min(limit, l.fileSize)
	if l.file == nil {
		add(source.Extent{Offset: 0, Length: end})
		return nil
	}
	return dataRanges(ctx, l.file, 0, end, func(off, n int64) { add(source.Extent{Offset: off, Length: n}) })
}

// readL1 reads the L1 entries that map [0,limit).
func (l *qcow2Layer) readL1(limit int64) ([]uint64, error) {
	n := (limit + l.img.l1Span() - 1) / l.img.l1Span()
	buf := make([]byte, n*8) // n <= l1Size <= qcow2MaxL1Bytes/8, checked at open
	if _, err := l.ra.ReadAt(buf, int64(l.img.l1Offset)); err != nil {
		return nil, fmt.Errorf("read L1 table: %w", err)
	}
	l1 := make([]uint64, n)
	for i := range l1 {
		l1[i] = binary.BigEndian.Uint64(buf[i*8:])
	}
	return l1, nil
}

// l2Allocated reports the data clusters of one L2 table, relative to the
// start of the range the table maps.
func (l *qcow2Layer) l2Allocated(l1Entry uint64, buf []byte, add func(source.Extent)) error {
	off := int64(l1Entry & qcow2OffsetMask)
	if off == 0 {
		return nil
	}
	if off > l.fileSize-int64(len(buf)) {
		return fmt.Errorf("L2 table at %d beyond end of file (%d bytes)", off, l.fileSize)
	}
	if _, err := l.ra.ReadAt(buf, off); err != nil {
		return fmt.Errorf("read L2 table at %d: %w", off, err)
	}
	cluster := l.img.clusterSize()
	entrySize := int64(len(buf)) / l.img.l2Entries()
	for i := range l.img.l2Entries() {
		entry := buf[i*entrySize:]
		l.clusterAllocated(entry, i*cluster, add)
	}
	return nil
}

// clusterAllocated reports the data of one cluster at virtual offset base
// from its (standard or extended) L2 entry.
func (l *qcow2Layer) clusterAllocated(entry []byte, base int64, add func(source.Extent)) {
	cluster := l.img.clusterSize()
	e := binary.BigEndian.Uint64(entry)
	switch {
	case e&qcow2CompressedFlag != 0:
		add(source.Extent{Offset: base, Length: cluster})
	case l.img.extendedL2():
		alloc := binary.BigEndian.Uint64(entry[8:]) & 0xffffffff
		sub := cluster / 32
		for i := range int64(32) {
			if alloc&(1<<i) != 0 {
				add(source.Extent{Offset: base + i*sub, Length: sub})
			}
		}
	case e&qcow2ZeroFlag != 0 && l.img.version >= 3:
		// reads as zeros
	case e&qcow2OffsetMask != 0:
		add(source.Extent{Offset: base, Length: cluster})
	}
}
