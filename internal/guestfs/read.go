package guestfs

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// readFull reads len(p) bytes at off; a short read is an error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at %d: %w", len(p), off, err)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// finishExtents sorts extents by file offset, checks that they lie within
// the volume and do not overlap in the file, merges neighbours and drops
// what lies at or past the file's size. A file whose data (what remains)
// adds up to more than the volume must map some blocks several times
// within itself: that is damage, not sharing, and the file is refused.
func finishExtents(exts []Extent, size, volSize int64, ino uint64) ([]Extent, error) {
	sort.Slice(exts, func(i, j int) bool { return exts[i].Logical < exts[j].Logical })
	out := exts[:0]
	var mapped int64
	for _, e := range exts {
		if e.Length <= 0 || e.Logical < 0 || e.Physical < 0 || e.Physical > volSize || e.Length > volSize-e.Physical {
			return nil, corrupt("inode %d: extent of %d bytes at %d lies outside the volume", ino, e.Length, e.Physical)
		}
		if e.Logical >= size {
			continue
		}
		if e.Length > size-e.Logical {
			e.Length = size - e.Logical
		}
		if mapped += e.Length; mapped > volSize {
			return nil, corrupt("inode %d: more than the volume's %d bytes of data (its extents map the same blocks several times)", ino, volSize)
		}
		if k := len(out); k > 0 {
			last := &out[k-1]
			if e.Logical < last.Logical+last.Length {
				return nil, corrupt("inode %d: extents overlap at file offset %d", ino, e.Logical)
			}
			if last.Logical+last.Length == e.Logical && last.Physical+last.Length == e.Physical {
				last.Length += e.Length
				continue
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// readNode reads a node's bytes [0, limit) into memory (directories,
// symlinks): holes read as zeros.
func readNode(r io.ReaderAt, n *node, limit int64) ([]byte, error) {
	size := n.Size
	if size > limit {
		return nil, corrupt("inode %d: %d bytes (more than %d)", n.Ino, size, limit)
	}
	if size < 0 {
		return nil, corrupt("inode %d: negative size", n.Ino)
	}
	// a hole at the end holds nothing: read only up to the last data
	if n.isInl {
		size = min(size, int64(len(n.inline)))
	} else if k := len(n.extents); k == 0 {
		size = 0
	} else {
		size = min(size, n.extents[k-1].Logical+n.extents[k-1].Length)
	}
	b := make([]byte, size)
	f := &File{r: r, n: n}
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}
