package repo

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// IndexEntryReader reads back the entries an IndexEncoder holds, in
// order, through a small buffer: spilled entries come from the temporary
// file. The copy engine spills the indexes it walks into encoders and
// reads them back with it, so it holds none of them in memory.
type IndexEntryReader struct {
	br   *bufio.Reader
	left uint64 // entries not read yet
	next uint64 // smallest chunk number the next entry may have
}

// Entries returns a reader of the entries added so far. Nothing may be
// added to the encoder while the reader is in use; several readers may
// run at once.
func (e *IndexEncoder) Entries() *IndexEntryReader {
	var r io.Reader = bytes.NewReader(e.buf)
	if e.spill != nil {
		r = io.MultiReader(io.NewSectionReader(e.spill, 0, e.spilled), r)
	}
	return &IndexEntryReader{br: bufio.NewReaderSize(r, 64<<10), left: e.count}
}

// Next returns the next entry, io.EOF after the last.
func (r *IndexEntryReader) Next() (IndexEntry, error) {
	var en IndexEntry
	if r.left == 0 {
		return en, io.EOF
	}
	gap, err := binary.ReadUvarint(r.br)
	if err == nil {
		_, err = io.ReadFull(r.br, en.ID[:])
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return en, fmt.Errorf("index spill file: %w", err)
	}
	r.left--
	en.N = r.next + gap
	r.next = en.N + 1
	return en, nil
}

// Hash returns the hash of the encoded index (h.Sum of what Bytes
// returns) without holding it in memory.
func (e *IndexEncoder) Hash(h *Hasher) (ChunkID, error) {
	h.h.Reset()
	_, _ = h.h.Write(e.appendHeader(nil))
	if e.spill != nil {
		if _, err := io.Copy(h.h, io.NewSectionReader(e.spill, 0, e.spilled)); err != nil {
			return ChunkID{}, fmt.Errorf("index spill file: %w", err)
		}
	}
	_, _ = h.h.Write(e.buf)
	var id ChunkID
	h.h.Sum(id[:0])
	return id, nil
}
