package chunkcache

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/zeebo/blake3"

	"github.com/holdfast-backup/holdfast/internal/atomicfile"
)

// ID is a chunk id.
type ID = [32]byte

// Generation names a gc generation; the zero value is "no gc has swept".
type Generation = [16]byte

const (
	magic     = "HFCHUNK1"
	headerLen = 8 + 16 + 8
	idLen     = 32
	sumLen    = 32
	fanout    = 1 << 16
)

// ErrCorrupt marks a cache file that fails a check.
var ErrCorrupt = errors.New("chunk cache corrupt")

// Set is an opened cache file. It is safe for concurrent use.
type Set struct {
	r     io.ReaderAt
	c     io.Closer
	gen   Generation
	count uint64
	// first[p] is the index of the first id whose two leading bytes are
	// >= p; first[fanout] == count.
	first []uint32
}

// Generation returns the gc generation the ids were seen under.
func (s *Set) Generation() Generation { return s.gen }

// Len returns the number of ids.
func (s *Set) Len() int { return int(s.count) }

// Close closes the file.
func (s *Set) Close() error {
	if s.c == nil {
		return nil
	}
	return s.c.Close()
}

// Open opens and checks a cache file; a missing file is an error wrapping
// os.ErrNotExist, a damaged one ErrCorrupt.
func Open(path string) (*Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	s, err := Decode(f, st.Size())
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.c = f
	return s, nil
}

// Decode checks the cache held by r (size bytes) and returns the set
// reading its ids from r.
func Decode(r io.ReaderAt, size int64) (*Set, error) {
	if size < headerLen+sumLen {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCorrupt, size)
	}
	var hdr [headerLen]byte
	if _, err := r.ReadAt(hdr[:], 0); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if string(hdr[:8]) != magic {
		return nil, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	s := &Set{r: r, count: binary.BigEndian.Uint64(hdr[24:32])}
	copy(s.gen[:], hdr[8:24])
	if s.count > uint64(1)<<32-1 || uint64(size) != headerLen+s.count*idLen+sumLen {
		return nil, fmt.Errorf("%w: %d ids do not fit %d bytes", ErrCorrupt, s.count, size)
	}
	h := blake3.New()
	_, _ = h.Write(hdr[:24]) // the count is checked by the length
	s.first = make([]uint32, fanout+1)
	br := bufio.NewReaderSize(io.NewSectionReader(r, headerLen, int64(s.count)*idLen), 1<<20)
	var prev, id ID
	next := 0 // fan-out slots filled so far
	for i := uint64(0); i < s.count; i++ {
		if _, err := io.ReadFull(br, id[:]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
		if i > 0 && bytes.Compare(prev[:], id[:]) >= 0 {
			return nil, fmt.Errorf("%w: ids out of order at %d", ErrCorrupt, i)
		}
		_, _ = h.Write(id[:])
		for p := int(id[0])<<8 | int(id[1]); next <= p; next++ {
			s.first[next] = uint32(i)
		}
		prev = id
	}
	for ; next <= fanout; next++ {
		s.first[next] = uint32(s.count)
	}
	var sum [sumLen]byte
	if _, err := r.ReadAt(sum[:], size-sumLen); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return s, nil
}

// Contains reports whether id is in the set.
func (s *Set) Contains(id ID) (bool, error) {
	p := int(id[0])<<8 | int(id[1])
	lo, hi := s.first[p], s.first[p+1]
	if lo == hi {
		return false, nil
	}
	buf := make([]byte, int(hi-lo)*idLen)
	if _, err := s.r.ReadAt(buf, headerLen+int64(lo)*idLen); err != nil {
		return false, fmt.Errorf("chunk cache: %w", err)
	}
	n := int(hi - lo)
	a, b := 0, n
	for a < b {
		m := int(uint(a+b) >> 1)
		if bytes.Compare(buf[m*idLen:(m+1)*idLen], id[:]) < 0 {
			a = m + 1
		} else {
			b = m
		}
	}
	return a < n && bytes.Equal(buf[a*idLen:(a+1)*idLen], id[:]), nil
}

// each calls fn for every id in order.
func (s *Set) each(fn func(ID) error) error {
	br := bufio.NewReaderSize(io.NewSectionReader(s.r, headerLen, int64(s.count)*idLen), 1<<20)
	var id ID
	for i := uint64(0); i < s.count; i++ {
		if _, err := io.ReadFull(br, id[:]); err != nil {
			return fmt.Errorf("chunk cache: %w", err)
		}
		if err := fn(id); err != nil {
			return err
		}
	}
	return nil
}

// Write writes a cache file of the ids in old (nil: none) and add (sorted
// here; duplicates dropped) through atomicfile: a crash or a failure
// mid-merge leaves the previous file whole. old may be the file at path.
func Write(path string, gen Generation, old *Set, add []ID) error {
	slices.SortFunc(add, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	add = slices.Compact(add)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	err := atomicfile.WriteWith(path, 0o600, func(f *os.File) error { return writeMerged(f, gen, old, add) })
	if err != nil {
		return fmt.Errorf("write chunk cache: %w", err)
	}
	return nil
}

func writeMerged(f *os.File, gen Generation, old *Set, add []ID) error {
	// The count goes in the header: write a placeholder, then patch it.
	h := blake3.New()
	bw := bufio.NewWriterSize(f, 1<<20)
	var hdr [headerLen]byte
	copy(hdr[:8], magic)
	copy(hdr[8:24], gen[:])
	_, _ = h.Write(hdr[:24])
	if _, err := bw.Write(hdr[:]); err != nil { // the count is patched below
		return err
	}
	var count uint64
	var last ID
	emit := func(id ID) error {
		if count > 0 && id == last {
			return nil
		}
		count++
		last = id
		_, _ = h.Write(id[:])
		_, err := bw.Write(id[:])
		return err
	}
	i := 0
	if old != nil {
		err := old.each(func(id ID) error {
			for ; i < len(add) && bytes.Compare(add[i][:], id[:]) < 0; i++ {
				if err := emit(add[i]); err != nil {
					return err
				}
			}
			return emit(id)
		})
		if err != nil {
			return err
		}
	}
	for ; i < len(add); i++ {
		if err := emit(add[i]); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if _, err := f.Write(h.Sum(nil)); err != nil { // after the flushed ids
		return err
	}
	binary.BigEndian.PutUint64(hdr[24:32], count)
	_, err := f.WriteAt(hdr[24:32], 24)
	return err
}
