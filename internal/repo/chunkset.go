package repo

import (
	"bytes"
	"slices"
)

// ChunkSet is a set of chunk IDs held compactly for GC and verify: 32
// bytes per chunk in 256 sorted, deduplicated slices (one per first byte
// of the ID), where a Go map needs about 100 (GC's mark set) to 240 bytes
// (verify's) per chunk. Build it with a ChunkSetBuilder.
type ChunkSet struct {
	shards [256][]ChunkID
	start  [257]int // start[b]: position of the first ID of shard b in the whole set
}

// Len returns the number of chunks in the set.
func (s *ChunkSet) Len() int { return s.start[256] }

// Has reports whether id is in the set.
func (s *ChunkSet) Has(id ChunkID) bool {
	_, ok := s.Pos(id)
	return ok
}

// Pos returns the position of id in the set's order (0 ≤ pos < Len), for
// per-chunk side tables such as a bitmap, and whether id is in the set.
func (s *ChunkSet) Pos(id ChunkID) (int, bool) {
	sh := s.shards[id[0]]
	i, ok := slices.BinarySearchFunc(sh, id, compareID)
	return s.start[id[0]] + i, ok
}

// All calls fn with every ID in increasing order, with its position.
func (s *ChunkSet) All(fn func(pos int, id ChunkID)) {
	for b := range s.shards {
		for i, id := range s.shards[b] {
			fn(s.start[b]+i, id)
		}
	}
}

func compareID(a, b ChunkID) int { return bytes.Compare(a[:], b[:]) }

// ChunkSetBuilder collects chunk IDs, with any number of duplicates, into
// a ChunkSet. Each shard keeps a sorted, deduplicated part and an unsorted
// pending part; the pending part is sorted and merged in once it is a
// quarter of the sorted part (or minPending): a merge costs at most five
// times the IDs it takes in, so the time stays O(n log n) in the IDs added
// (the sort), and the memory at most 1.25 times the set.
type ChunkSetBuilder struct {
	sorted  [256][]ChunkID
	pending [256][]ChunkID
}

// minPending is the pending size below which a shard does not merge.
const minPending = 1024

// Add adds one ID.
func (b *ChunkSetBuilder) Add(id ChunkID) {
	k := id[0]
	b.pending[k] = append(b.pending[k], id)
	if p := len(b.pending[k]); p >= minPending && p >= len(b.sorted[k])/4 {
		b.merge(k)
	}
}

// AddIndex adds the chunks an index references.
func (b *ChunkSetBuilder) AddIndex(ix *Index) {
	for _, e := range ix.Entries {
		b.Add(e.ID)
	}
}

// addEntry adds an index entry's chunk (for walkIndex).
func (b *ChunkSetBuilder) addEntry(e IndexEntry) { b.Add(e.ID) }

// merge sorts shard k's pending IDs and merges them into its sorted IDs,
// dropping duplicates.
func (b *ChunkSetBuilder) merge(k byte) {
	p := b.pending[k]
	if len(p) == 0 {
		return
	}
	slices.SortFunc(p, compareID)
	p = slices.Compact(p)
	b.sorted[k] = mergeSorted(b.sorted[k], p)
	b.pending[k] = p[:0]
}

// mergeSorted merges two sorted, deduplicated slices into a new one
// without duplicates.
func mergeSorted(a, p []ChunkID) []ChunkID {
	if len(a) == 0 {
		return slices.Clone(p)
	}
	out := make([]ChunkID, 0, len(a)+len(p))
	i, j := 0, 0
	for i < len(a) && j < len(p) {
		switch c := compareID(a[i], p[j]); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, p[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	out = append(out, p[j:]...)
	return slices.Clip(out)
}

// Set finishes the set; the builder must not be used afterwards.
func (b *ChunkSetBuilder) Set() *ChunkSet {
	s := &ChunkSet{}
	for k := range b.sorted {
		b.merge(byte(k))
		b.pending[k] = nil
		s.shards[k] = b.sorted[k]
		b.sorted[k] = nil
		s.start[k+1] = s.start[k] + len(s.shards[k])
	}
	return s
}
