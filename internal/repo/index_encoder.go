package repo

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// IndexEncoder builds an index in its stored plain form (the layout in
// index.go) one entry at a time, in increasing chunk order. It keeps at
// most SpillAt bytes of entries in memory (about 33 bytes per entry) and
// appends the rest to an unlinked temporary file, so a backup's memory
// does not grow with the disk's non-zero chunks. Bytes reads the whole
// index back once, for SaveEncodedIndex. Close releases the file.
type IndexEncoder struct {
	ix    Index // geometry only
	total uint64
	count uint64
	prev  int64
	buf   []byte   // entries not yet spilled
	spill *os.File // entries spilled, in order; nil until the first spill
	// spilled counts the bytes in spill.
	spilled int64
	opt     EncoderOptions
}

// EncoderOptions tune an IndexEncoder.
type EncoderOptions struct {
	// SpillAt is the most entry bytes held in memory; 0 means
	// DefaultSpillAt, negative never spills.
	SpillAt int
	// Dir holds the temporary file; "" means os.TempDir().
	Dir string
}

// DefaultSpillAt keeps about 127 000 entries (4 MiB) in memory.
const DefaultSpillAt = 4 << 20

// NewIndexEncoder starts the index of a disk of diskSize bytes.
func NewIndexEncoder(diskSize int64, chunkSize int, o EncoderOptions) (*IndexEncoder, error) {
	if err := ValidateChunkSize(chunkSize); err != nil {
		return nil, err
	}
	if diskSize < 0 {
		return nil, fmt.Errorf("index of a disk of %d bytes", diskSize)
	}
	if o.SpillAt == 0 {
		o.SpillAt = DefaultSpillAt
	}
	e := &IndexEncoder{ix: Index{DiskSize: diskSize, ChunkSize: chunkSize}, prev: -1, opt: o}
	e.total = e.ix.Chunks()
	return e, nil
}

// Add appends the entry of non-zero chunk n; n must be larger than the
// previous entry's and inside the disk.
func (e *IndexEncoder) Add(n uint64, id ChunkID) error {
	if int64(n) <= e.prev || n >= e.total {
		return fmt.Errorf("index entry for chunk %d out of order or beyond the disk (previous %d, %d chunks)", n, e.prev, e.total)
	}
	if e.opt.SpillAt > 0 && len(e.buf)+binary.MaxVarintLen64+len(id) > e.opt.SpillAt {
		if err := e.flush(); err != nil {
			return err
		}
	}
	e.buf = binary.AppendUvarint(e.buf, uint64(int64(n)-e.prev-1))
	e.buf = append(e.buf, id[:]...)
	e.prev = int64(n)
	e.count++
	return nil
}

// flush moves the entries in memory to the temporary file.
func (e *IndexEncoder) flush() error {
	if e.spill == nil {
		f, err := os.CreateTemp(e.opt.Dir, "holdfast-index-")
		if err != nil {
			return fmt.Errorf("index spill file: %w", err)
		}
		// Unlinked at once: the space goes back however the process ends.
		_ = os.Remove(f.Name())
		e.spill = f
	}
	if _, err := e.spill.Write(e.buf); err != nil {
		return fmt.Errorf("index spill file: %w", err)
	}
	e.spilled += int64(len(e.buf))
	e.buf = e.buf[:0]
	return nil
}

// Count returns the number of entries added.
func (e *IndexEncoder) Count() int { return int(e.count) }

// Buffered returns the entry bytes held in memory (at most SpillAt).
func (e *IndexEncoder) Buffered() int { return len(e.buf) }

// Geometry returns the disk and chunk size of the index.
func (e *IndexEncoder) Geometry() (diskSize int64, chunkSize int) {
	return e.ix.DiskSize, e.ix.ChunkSize
}

// Len returns the length of the encoded index.
func (e *IndexEncoder) Len() int { return indexHeaderLen + int(e.spilled) + len(e.buf) }

// AppendTo appends the encoded index (what Index.MarshalBinary returns
// for the same entries) to dst, reading spilled entries back.
func (e *IndexEncoder) AppendTo(dst []byte) ([]byte, error) {
	dst = e.appendHeader(dst)
	if e.spill != nil {
		at := len(dst)
		dst = append(dst, make([]byte, e.spilled)...)
		if _, err := e.spill.ReadAt(dst[at:], 0); err != nil && err != io.EOF {
			return nil, fmt.Errorf("index spill file: %w", err)
		}
	}
	return append(dst, e.buf...), nil
}

// appendHeader appends the encoded index's header to dst.
func (e *IndexEncoder) appendHeader(dst []byte) []byte {
	var h [indexHeaderLen]byte
	copy(h[:], indexMagic)
	binary.LittleEndian.PutUint32(h[4:], 1)
	binary.LittleEndian.PutUint64(h[8:], uint64(e.ix.DiskSize))
	binary.LittleEndian.PutUint32(h[16:], uint32(e.ix.ChunkSize))
	binary.LittleEndian.PutUint64(h[24:], e.count)
	return append(dst, h[:]...)
}

// Bytes returns the encoded index in a new slice of exactly its length.
func (e *IndexEncoder) Bytes() ([]byte, error) {
	return e.AppendTo(make([]byte, 0, e.Len()))
}

// Close releases the temporary file; the encoder is empty afterwards.
func (e *IndexEncoder) Close() error {
	var err error
	if e.spill != nil {
		err = e.spill.Close()
	}
	e.spill, e.buf, e.spilled, e.count, e.prev = nil, nil, 0, 0, -1
	return err
}
