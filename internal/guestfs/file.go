package guestfs

import (
	"errors"
	"fmt"
	"io"
	"sort"
)

// File reads one regular file's bytes: holes and unwritten extents read as
// zeros, and nothing past the file's size is returned.
type File struct {
	r   io.ReaderAt
	n   *node
	off int64
}

// Stat returns the file's metadata.
func (f *File) Stat() Stat { return f.n.Stat }

// Size is the file's size in bytes.
func (f *File) Size() int64 { return f.n.Size }

// Inline reports whether the file's bytes live in its inode (ext4 inline
// data): then it has no extents, and its bytes are read with ReadAt.
func (f *File) Inline() bool { return f.n.isInl }

// InlineSize is how many of an inline file's bytes its inode holds (at
// most its size): the rest, to the size, reads as zeros — a hole.
func (f *File) InlineSize() int64 {
	if !f.n.isInl {
		return 0
	}
	return min(f.n.Size, int64(len(f.n.inline)))
}

// Extents returns the file's data extents (none for inline data).
func (f *File) Extents() []Extent { return append([]Extent(nil), f.n.extents...) }

// ReadAt reads len(p) bytes at file offset off.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= f.n.Size {
		return 0, io.EOF
	}
	want := len(p)
	if rem := f.n.Size - off; int64(want) > rem {
		want = int(rem)
	}
	if f.n.isInl {
		n := copy(p[:want], sliceFrom(f.n.inline, off))
		clear(p[n:want])
		return eofIfShort(want, len(p))
	}
	buf := p[:want]
	exts := f.n.extents
	i := sort.Search(len(exts), func(i int) bool { return exts[i].Logical+exts[i].Length > off })
	pos := off
	for len(buf) > 0 {
		if i >= len(exts) || exts[i].Logical > pos {
			// a hole up to the next extent (or the end)
			gap := int64(len(buf))
			if i < len(exts) && exts[i].Logical-pos < gap {
				gap = exts[i].Logical - pos
			}
			clear(buf[:gap])
			buf, pos = buf[gap:], pos+gap
			continue
		}
		e := exts[i]
		in := pos - e.Logical
		n := int64(len(buf))
		if e.Length-in < n {
			n = e.Length - in
		}
		if got, err := f.r.ReadAt(buf[:n], e.Physical+in); int64(got) < n {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return int(pos - off), fmt.Errorf("read inode %d at %d: %w", f.n.Ino, pos, err)
		}
		buf, pos = buf[n:], pos+n
		i++
	}
	return eofIfShort(want, len(p))
}

func eofIfShort(n, want int) (int, error) {
	if n < want {
		return n, io.EOF
	}
	return n, nil
}

func sliceFrom(b []byte, off int64) []byte {
	if off >= int64(len(b)) {
		return nil
	}
	return b[off:]
}

// Read reads from the current offset.
func (f *File) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	return n, err
}

// Seek sets the offset of the next Read.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.n.Size
	default:
		return 0, errors.New("seek: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("seek: negative offset")
	}
	f.off = offset
	return offset, nil
}
