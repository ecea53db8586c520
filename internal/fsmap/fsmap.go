package fsmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/holdfast-backup/holdfast/internal/guestdisk"
)

// Reasons a range is excluded.
const (
	ReasonFree = "free" // free blocks of a file system
	ReasonSwap = "swap" // a swap partition's body
)

// errDamaged is wrapped by every refusal to read a file system: the volume
// keeps all its data and the caller gets a warning.
var errDamaged = errors.New("file system not usable for exclusion")

// maxRuns bounds the free extents one volume may have (about 24 bytes
// each in memory): a hostile bitmap of alternating bits must not make the
// backup allocate gigabytes. A volume beyond it is kept whole.
const maxRuns = 1 << 21

// swapHeader is the part of a swap volume that is always kept: the first
// page, with the header and the signature.
const swapHeader = 4096

// Range is a byte range of the disk with no live data.
type Range struct {
	Offset int64  `json:"offset"`
	Length int64  `json:"length"`
	Reason string `json:"reason"`
}

// End returns the first byte after the range.
func (r Range) End() int64 { return r.Offset + r.Length }

// Options choose what to exclude.
type Options struct {
	Free bool // free blocks of ext2/3/4 and xfs
	Swap bool // swap partitions and swap files after their header page
	// Paths are files and directories (everything beneath them) inside
	// the guest's ext2/3/4 and xfs file systems whose data is left out,
	// on every file system that has them.
	Paths []string
}

// Any reports whether anything is to be excluded.
func (o Options) Any() bool { return o.Free || o.Swap || len(o.Paths) > 0 }

// Map is the result for one disk.
type Map struct {
	// Ranges are sorted and do not overlap.
	Ranges []Range
	// Warnings name volumes whose data was all kept, and why.
	Warnings []string
}

// Bytes returns the excluded bytes per reason.
func (m Map) Bytes() map[string]int64 {
	b := map[string]int64{}
	for _, r := range m.Ranges {
		b[r.Reason] += r.Length
	}
	return b
}

// Find returns the ranges of a disk of size bytes that hold no live data.
// An unreadable partition table or file system excludes nothing from what
// it covers and adds a warning; only a cancelled context is an error.
func Find(ctx context.Context, r io.ReaderAt, size int64, o Options) (Map, error) {
	var m Map
	if !o.Any() {
		return m, nil
	}
	vols, err := guestdisk.Volumes(r, size)
	if err != nil {
		m.Warnings = append(m.Warnings, fmt.Sprintf("nothing excluded: %v", err))
		return m, nil
	}
	for _, v := range vols {
		if err := ctx.Err(); err != nil {
			return Map{}, err
		}
		rs, err := volumeRanges(ctx, v.Section(r), v, o)
		if err != nil {
			if ctx.Err() != nil {
				return Map{}, ctx.Err()
			}
			m.Warnings = append(m.Warnings, fmt.Sprintf("partition %d (%s): nothing excluded: %v", v.Partition, v.Content, err))
			continue
		}
		for _, x := range rs {
			x.Offset += v.Start
			m.Ranges = append(m.Ranges, x)
		}
	}
	if err := lvmRanges(ctx, r, vols, o, &m); err != nil {
		return Map{}, err
	}
	m.Ranges = normalize(m.Ranges, size)
	return m, nil
}

// volumeRanges returns the excluded ranges of one volume, relative to it.
func volumeRanges(ctx context.Context, r io.ReaderAt, v guestdisk.Volume, o Options) ([]Range, error) {
	switch {
	case v.Content == guestdisk.ContentSwap && o.Swap:
		if v.Size <= swapHeader {
			return nil, nil
		}
		return []Range{{Offset: swapHeader, Length: v.Size - swapHeader, Reason: ReasonSwap}}, nil
	case v.Content != guestdisk.ContentExt && v.Content != guestdisk.ContentXFS:
		return nil, nil
	}
	var out []Range
	if o.Free {
		free := ext4Free
		if v.Content == guestdisk.ContentXFS {
			free = xfsFree
		}
		rs, err := free(ctx, r, v.Size)
		if err != nil {
			return nil, err
		}
		out = rs
	}
	if o.Swap || len(o.Paths) > 0 {
		rs, err := fileRanges(ctx, r, v, o)
		switch {
		case err != nil && !o.Free && len(o.Paths) == 0 && errors.Is(err, errDamaged):
			// Only swap was asked for: a file system whose swap files
			// cannot be looked for is no news.
		case err != nil:
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

// normalize sorts ranges, clips them to [0, size), drops empty ones and
// merges touching ranges of the same reason. Overlapping ranges (which
// volumes that passed guestdisk's checks do not produce) keep the first.
func normalize(rs []Range, size int64) []Range {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
	out := rs[:0]
	for _, x := range rs {
		x.Offset = max(x.Offset, 0)
		end := min(x.Offset+x.Length, size)
		if n := len(out); n > 0 && x.Offset < out[n-1].End() {
			x.Offset = out[n-1].End()
		}
		if end <= x.Offset {
			continue
		}
		x.Length = end - x.Offset
		if n := len(out); n > 0 && out[n-1].End() == x.Offset && out[n-1].Reason == x.Reason {
			out[n-1].Length += x.Length
			continue
		}
		out = append(out, x)
	}
	return out
}

// readFull reads len(b) bytes at off of a volume of size bytes; a read
// outside the volume or a short read is errDamaged.
func readFull(r io.ReaderAt, size int64, b []byte, off int64) error {
	if off < 0 || off > size || int64(len(b)) > size-off {
		return fmt.Errorf("%w: metadata at byte %d outside the volume", errDamaged, off)
	}
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read at byte %d: %w", off, err)
}
