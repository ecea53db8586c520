package repo

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// A fixed index maps chunk numbers of one disk to chunk IDs. Chunk n covers
// bytes [n*ChunkSize, min((n+1)*ChunkSize, DiskSize)). Chunks that are all
// zeros have no entry, so an index grows with the data, not the disk size.
//
// Plain layout (stored inside a kind-2 blob):
//
//	0  4  magic "HFIX"
//	4  4  version (1), little endian
//	8  8  disk size
//	16 4  chunk size
//	20 4  reserved, zero
//	24 8  entry count
//	32 …  entries in increasing chunk-number order: uvarint(n - prev - 1)
//	      where prev is the previous entry's number (-1 before the first),
//	      followed by the 32-byte chunk ID.
const (
	indexMagic     = "HFIX"
	indexHeaderLen = 32
)

// IndexEntry is one non-zero chunk of a disk.
type IndexEntry struct {
	N  uint64
	ID ChunkID
}

// Index is the fixed index of one disk of one restore point.
type Index struct {
	DiskSize  int64
	ChunkSize int
	Entries   []IndexEntry // sorted by N, unique
}

// Chunks returns how many chunk positions the disk has.
func (ix *Index) Chunks() uint64 {
	// Unsigned, and without rounding up by addition: DiskSize may be close
	// to the int64 maximum.
	size, cs := uint64(ix.DiskSize), uint64(ix.ChunkSize)
	n := size / cs
	if size%cs != 0 {
		n++
	}
	return n
}

// ChunkLen returns the length of chunk n (the last one may be short).
func (ix *Index) ChunkLen(n uint64) int {
	off := int64(n) * int64(ix.ChunkSize)
	if rest := ix.DiskSize - off; rest < int64(ix.ChunkSize) {
		return int(rest)
	}
	return ix.ChunkSize
}

// Lookup returns the ID of chunk n, or ok=false for a zero chunk.
func (ix *Index) Lookup(n uint64) (ChunkID, bool) {
	i := sort.Search(len(ix.Entries), func(i int) bool { return ix.Entries[i].N >= n })
	if i < len(ix.Entries) && ix.Entries[i].N == n {
		return ix.Entries[i].ID, true
	}
	return ChunkID{}, false
}

// DataBytes returns the number of bytes covered by non-zero chunks.
func (ix *Index) DataBytes() int64 {
	var n int64
	for _, e := range ix.Entries {
		n += int64(ix.ChunkLen(e.N))
	}
	return n
}

// MarshalBinary encodes the index.
func (ix *Index) MarshalBinary() ([]byte, error) {
	b := make([]byte, indexHeaderLen, indexHeaderLen+len(ix.Entries)*34)
	copy(b, indexMagic)
	binary.LittleEndian.PutUint32(b[4:], 1)
	binary.LittleEndian.PutUint64(b[8:], uint64(ix.DiskSize))
	binary.LittleEndian.PutUint32(b[16:], uint32(ix.ChunkSize))
	binary.LittleEndian.PutUint64(b[24:], uint64(len(ix.Entries)))
	prev := int64(-1)
	for _, e := range ix.Entries {
		if int64(e.N) <= prev {
			return nil, fmt.Errorf("index entries out of order at chunk %d", e.N)
		}
		b = binary.AppendUvarint(b, uint64(int64(e.N)-prev-1))
		b = append(b, e.ID[:]...)
		prev = int64(e.N)
	}
	return b, nil
}

// UnmarshalIndex decodes and validates an index.
func UnmarshalIndex(b []byte) (*Index, error) {
	ix := &Index{}
	count, err := walkIndex(b, ix, func(IndexEntry) {})
	if err != nil {
		return nil, err
	}
	ix.Entries = make([]IndexEntry, 0, count)
	_, _ = walkIndex(b, ix, func(e IndexEntry) { ix.Entries = append(ix.Entries, e) })
	return ix, nil
}

// CheckIndex validates an encoded index without decoding its entries into
// memory; it returns the geometry (Entries nil) and the entry count.
func CheckIndex(b []byte) (*Index, int, error) {
	ix := &Index{}
	count, err := walkIndex(b, ix, func(IndexEntry) {})
	return ix, int(count), err
}

// walkIndex validates an encoded index, sets ix's geometry and calls fn
// with every entry in order (also before finding a later entry corrupt).
func walkIndex(b []byte, ix *Index, fn func(IndexEntry)) (uint64, error) {
	if len(b) < indexHeaderLen || string(b[:4]) != indexMagic {
		return 0, fmt.Errorf("%w: not an index", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != 1 {
		return 0, fmt.Errorf("%w: index version %d", ErrCorrupt, v)
	}
	ix.DiskSize = int64(binary.LittleEndian.Uint64(b[8:]))
	ix.ChunkSize = int(binary.LittleEndian.Uint32(b[16:]))
	count := binary.LittleEndian.Uint64(b[24:])
	if ix.DiskSize < 0 || ValidateChunkSize(ix.ChunkSize) != nil || binary.LittleEndian.Uint32(b[20:]) != 0 {
		return 0, fmt.Errorf("%w: bad index header", ErrCorrupt)
	}
	total := ix.Chunks()
	if count > total || count > uint64(len(b)-indexHeaderLen)/33 {
		return 0, fmt.Errorf("%w: index entry count %d out of range", ErrCorrupt, count)
	}
	p := b[indexHeaderLen:]
	next := uint64(0)
	for i := uint64(0); i < count; i++ {
		gap, n := binary.Uvarint(p)
		// n > 1 && p[n-1] == 0: an overlong varint; only the shortest
		// form is valid, so that an index has exactly one encoding.
		if n <= 0 || n > 1 && p[n-1] == 0 || len(p) < n+32 || gap >= total-next {
			return 0, fmt.Errorf("%w: index entry %d malformed", ErrCorrupt, i)
		}
		e := IndexEntry{N: next + gap}
		copy(e.ID[:], p[n:n+32])
		fn(e)
		p = p[n+32:]
		next = e.N + 1
	}
	if len(p) != 0 {
		return 0, fmt.Errorf("%w: %d trailing bytes after index entries", ErrCorrupt, len(p))
	}
	return count, nil
}
