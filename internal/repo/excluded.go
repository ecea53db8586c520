package repo

import "fmt"

// MaxExcludedRuns bounds the chunk runs a manifest lists for one disk
// (about 40 bytes of JSON each): beyond it only the byte counts are kept
// and the next backup with changed block tracking reads every allocated
// chunk once.
const MaxExcludedRuns = 8192

// Excluded records what a backup left out of a disk (--exclude-free,
// --exclude-swap): those bytes were stored, and restore as, zeros.
type Excluded struct {
	// Bytes counts the excluded bytes per reason ("free", "swap").
	Bytes map[string]int64 `json:"bytes"`
	// Chunks are the chunks that held excluded bytes, as coalesced
	// chunk-aligned byte ranges; the next backup treats them as changed
	// whatever change tracking says. Empty with ChunksOmitted when there
	// were more than MaxExcludedRuns runs.
	Chunks        []ByteRange `json:"chunks,omitempty"`
	ChunksOmitted bool        `json:"chunks_omitted,omitempty"`
}

// ByteRange is [Offset, Offset+Length) of a disk.
type ByteRange struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// Total is the number of excluded bytes.
func (e *Excluded) Total() int64 {
	if e == nil {
		return 0
	}
	var n int64
	for _, b := range e.Bytes {
		n += b
	}
	return n
}

// validate checks the record against its disk's size.
func (e *Excluded) validate(size int64) error {
	if e == nil {
		return nil
	}
	if len(e.Chunks) > MaxExcludedRuns {
		return fmt.Errorf("%d excluded runs", len(e.Chunks))
	}
	var total int64
	for _, b := range e.Bytes {
		if b < 0 || b > size {
			return fmt.Errorf("excluded byte count %d", b)
		}
		total += b
	}
	if total > size {
		return fmt.Errorf("%d excluded bytes of a %d-byte disk", total, size)
	}
	end := int64(0)
	for _, r := range e.Chunks {
		if r.Offset < end || r.Length <= 0 || r.Length > size-r.Offset {
			return fmt.Errorf("excluded range %d+%d", r.Offset, r.Length)
		}
		end = r.Offset + r.Length
	}
	return nil
}
