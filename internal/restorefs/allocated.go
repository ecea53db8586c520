package restorefs

import "sort"

// Allocated describes [off, off+length), clipped to the disk, as sorted,
// coalesced extents at chunk granularity: Zero extents are zero chunks
// (never stored, read as zeros), the others hold data. It walks the index
// entries in the range only, so it is cheap on large sparse disks. This
// is what NBD base:allocation and SEEK_DATA/SEEK_HOLE answer from.
func (d *Disk) Allocated(off, length int64) []Extent {
	size := d.ix.DiskSize
	if off < 0 {
		length += off
		off = 0
	}
	if length <= 0 || off >= size {
		return nil
	}
	end := size
	if length < size-off {
		end = off + length
	}
	var out []Extent
	add := func(lo, hi int64, zero bool) {
		lo, hi = max(lo, off), min(hi, end)
		if lo >= hi {
			return
		}
		if k := len(out) - 1; k >= 0 && out[k].Zero == zero && out[k].End() == lo {
			out[k].Length += hi - lo
			return
		}
		out = append(out, Extent{Offset: lo, Length: hi - lo, Zero: zero})
	}
	first := uint64(off / d.cs)
	last := uint64((end - 1) / d.cs)
	es := d.ix.Entries
	i := sort.Search(len(es), func(i int) bool { return es[i].N >= first })
	pos := first // first chunk not yet described
	for ; i < len(es) && es[i].N <= last; i++ {
		n := es[i].N
		if n > pos {
			add(int64(pos)*d.cs, int64(n)*d.cs, true)
		}
		add(int64(n)*d.cs, int64(n+1)*d.cs, false)
		pos = n + 1
	}
	if pos <= last {
		add(int64(pos)*d.cs, int64(last+1)*d.cs, true)
	}
	return out
}
