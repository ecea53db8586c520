package repo

import (
	"encoding/binary"
	"fmt"
)

// IndexEncoder builds an index in its stored plain form (the layout in
// index.go) one entry at a time, in increasing chunk order. It holds about
// 33 bytes per entry in fixed-size blocks, so that a backup neither keeps
// an IndexEntry (40 bytes) per non-zero chunk nor copies a growing slice;
// Bytes joins the blocks once, for SaveEncodedIndex.
type IndexEncoder struct {
	ix     Index // geometry only
	total  uint64
	blocks [][]byte
	count  uint64
	prev   int64
}

// encoderBlock is the size of one block of encoded entries.
const encoderBlock = 1 << 20

// NewIndexEncoder starts the index of a disk of diskSize bytes.
func NewIndexEncoder(diskSize int64, chunkSize int) (*IndexEncoder, error) {
	if err := ValidateChunkSize(chunkSize); err != nil {
		return nil, err
	}
	if diskSize < 0 {
		return nil, fmt.Errorf("index of a disk of %d bytes", diskSize)
	}
	e := &IndexEncoder{ix: Index{DiskSize: diskSize, ChunkSize: chunkSize}, prev: -1}
	e.total = e.ix.Chunks()
	return e, nil
}

// Add appends the entry of non-zero chunk n; n must be larger than the
// previous entry's and inside the disk.
func (e *IndexEncoder) Add(n uint64, id ChunkID) error {
	if int64(n) <= e.prev || n >= e.total {
		return fmt.Errorf("index entry for chunk %d out of order or beyond the disk (previous %d, %d chunks)", n, e.prev, e.total)
	}
	k := len(e.blocks) - 1
	if k < 0 || len(e.blocks[k])+binary.MaxVarintLen64+len(id) > cap(e.blocks[k]) {
		e.blocks = append(e.blocks, make([]byte, 0, encoderBlock))
		k++
	}
	b := binary.AppendUvarint(e.blocks[k], uint64(int64(n)-e.prev-1))
	e.blocks[k] = append(b, id[:]...)
	e.prev = int64(n)
	e.count++
	return nil
}

// Count returns the number of entries added.
func (e *IndexEncoder) Count() int { return int(e.count) }

// Geometry returns the disk and chunk size of the index.
func (e *IndexEncoder) Geometry() (diskSize int64, chunkSize int) {
	return e.ix.DiskSize, e.ix.ChunkSize
}

// Bytes returns the encoded index (what Index.MarshalBinary returns for
// the same entries) and releases the blocks: the encoder is empty after.
func (e *IndexEncoder) Bytes() []byte {
	n := indexHeaderLen
	for _, b := range e.blocks {
		n += len(b)
	}
	out := make([]byte, indexHeaderLen, n)
	copy(out, indexMagic)
	binary.LittleEndian.PutUint32(out[4:], 1)
	binary.LittleEndian.PutUint64(out[8:], uint64(e.ix.DiskSize))
	binary.LittleEndian.PutUint32(out[16:], uint32(e.ix.ChunkSize))
	binary.LittleEndian.PutUint64(out[24:], e.count)
	for i, b := range e.blocks {
		out = append(out, b...)
		e.blocks[i] = nil // freed as we go
	}
	e.blocks, e.count, e.prev = nil, 0, -1
	return out
}
