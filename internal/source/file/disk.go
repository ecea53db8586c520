package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// maxDiskSize bounds every virtual size read from image metadata (1 EiB), so
// that offset arithmetic can never overflow an int64.
const maxDiskSize = int64(1) << 60

// sectorSize is the unit of VMDK sizes and offsets.
const sectorSize = 512

// extent is one contiguous piece of a virtual disk backed by one storage
// object (a byte range of a file, a sparse extent, zeros).
type extent interface {
	// readAt fills p entirely from offset off of the extent; the caller
	// guarantees off >= 0 and off+len(p) <= the extent's length.
	readAt(p []byte, off int64) error
	// allocated reports, through add, the ranges of [0,length) that may hold
	// data, in ascending order and shifted by base.
	allocated(ctx context.Context, length, base int64, add func(source.Extent)) error
}

// part places an extent at a virtual offset.
type part struct {
	start, length int64
	ext           extent
}

// disk is a virtual disk made of contiguous parts: a raw file or device (one
// part) or a VMDK (one part per descriptor extent). It is safe for
// concurrent use as long as its extents are, which all of them are.
type disk struct {
	info    source.Info
	size    int64
	parts   []part
	closers []io.Closer
}

var _ source.Disk = (*disk)(nil)

// addPart appends an extent of length bytes after the existing parts.
func (d *disk) addPart(length int64, ext extent) error {
	if length < 0 || length > maxDiskSize-d.size {
		return fmt.Errorf("extent of %d bytes makes the disk larger than %d bytes", length, maxDiskSize)
	}
	if length > 0 {
		d.parts = append(d.parts, part{start: d.size, length: length, ext: ext})
	}
	d.size += length
	return nil
}

func (d *disk) Size() int64           { return d.size }
func (d *disk) Describe() source.Info { return d.info }

func (d *disk) Close() error {
	var errs []error
	for _, c := range d.closers {
		errs = append(errs, c.Close())
	}
	d.closers = nil
	return errors.Join(errs...)
}

// ReadAt reads like os.File.ReadAt: a read past Size is short and returns
// io.EOF.
func (d *disk) ReadAt(p []byte, off int64) (int, error) {
	return readWithin(p, off, d.size, d.readParts)
}

// readParts fills p from off, within the disk, part by part.
func (d *disk) readParts(p []byte, off int64) error {
	i := sort.Search(len(d.parts), func(i int) bool { return d.parts[i].start+d.parts[i].length > off })
	for len(p) > 0 {
		if i >= len(d.parts) {
			return fmt.Errorf("%s: no extent at offset %d", d.describe(), off)
		}
		pt := d.parts[i]
		n := min(int64(len(p)), pt.start+pt.length-off)
		if err := pt.ext.readAt(p[:n], off-pt.start); err != nil {
			return fmt.Errorf("%s: read at %d: %w", d.describe(), off, err)
		}
		p, off, i = p[n:], off+n, i+1
	}
	return nil
}

// Allocated lists the ranges that may hold data, coalesced.
func (d *disk) Allocated(ctx context.Context) ([]source.Extent, error) {
	var list extentList
	for _, pt := range d.parts {
		if err := pt.ext.allocated(ctx, pt.length, pt.start, list.add); err != nil {
			return nil, fmt.Errorf("%s: allocated ranges: %w", d.describe(), err)
		}
	}
	return list.extents, nil
}

func (d *disk) describe() string { return d.info.Format + " " + d.info.Location }

// readWithin implements io.ReaderAt semantics over a disk of the given size:
// read fills the in-bounds part of p, and a read reaching past size is short
// and returns io.EOF.
func readWithin(p []byte, off, size int64, read func(p []byte, off int64) error) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if off >= size {
		return 0, io.EOF
	}
	var eof error
	if int64(len(p)) > size-off {
		p, eof = p[:size-off], io.EOF
	}
	if err := read(p, off); err != nil {
		return 0, err
	}
	return len(p), eof
}

// extentList accumulates ascending ranges, merging adjacent or overlapping
// ones.
type extentList struct {
	extents []source.Extent
}

func (l *extentList) add(e source.Extent) {
	if e.Length <= 0 {
		return
	}
	if n := len(l.extents); n > 0 && l.extents[n-1].End() >= e.Offset {
		last := &l.extents[n-1]
		last.Length = max(last.End(), e.End()) - last.Offset
		return
	}
	l.extents = append(l.extents, e)
}

// zeroExtent reads as zeros and holds no data (VMDK ZERO extents).
type zeroExtent struct{}

func (zeroExtent) readAt(p []byte, _ int64) error {
	clear(p)
	return nil
}

func (zeroExtent) allocated(context.Context, int64, int64, func(source.Extent)) error {
	return nil
}
