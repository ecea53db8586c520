package pipeline

import (
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// action says what the backup does with one chunk position.
type action int

const (
	actZero  action = iota // unallocated: nothing to read or store
	actRead                // read, hash, dedup, store
	actReuse               // unchanged per CBT: take the previous point's entry
)

// cursor walks a sorted extent list alongside increasing chunk ranges.
type cursor struct {
	ext []source.Extent
	i   int
}

// overlaps reports whether [off, end) intersects any extent; calls must
// come with non-decreasing off.
func (c *cursor) overlaps(off, end int64) bool {
	for c.i < len(c.ext) && c.ext[c.i].End() <= off {
		c.i++
	}
	return c.i < len(c.ext) && c.ext[c.i].Offset < end
}

// planner decides the action for each chunk in order.
type planner struct {
	chunkSize int64
	size      int64
	alloc     cursor
	changed   *cursor     // nil: no CBT, read everything allocated
	prev      *repo.Index // used with changed
	prevPos   int
}

func (p *planner) next(n uint64) (action, repo.ChunkID) {
	off := int64(n) * p.chunkSize
	end := min(off+p.chunkSize, p.size)
	if !p.alloc.overlaps(off, end) {
		return actZero, repo.ChunkID{}
	}
	if p.changed == nil || p.changed.overlaps(off, end) {
		return actRead, repo.ChunkID{}
	}
	// Unchanged since the previous point: reuse its entry (or zero).
	for p.prevPos < len(p.prev.Entries) && p.prev.Entries[p.prevPos].N < n {
		p.prevPos++
	}
	if p.prevPos < len(p.prev.Entries) && p.prev.Entries[p.prevPos].N == n {
		return actReuse, p.prev.Entries[p.prevPos].ID
	}
	return actZero, repo.ChunkID{}
}
