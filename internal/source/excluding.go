package source

import (
	"context"
	"sort"
)

// Excluding returns d with the ranges ex (sorted, disjoint) left out: they
// are removed from Allocated and read as zeros, so the pipeline skips the
// chunks they cover and zeroes them inside the chunks it reads. It is how
// a backup leaves out what the guest does not need (free space, swap).
// The returned disk does not track changes: callers ask d for them.
func Excluding(d Disk, ex []Extent) Disk {
	return &excluding{Disk: d, ex: ex}
}

type excluding struct {
	Disk
	ex []Extent
}

// ReadAt reads the underlying disk and zeroes the excluded bytes; a read
// that lies wholly in one excluded range does not reach the disk.
func (d *excluding) ReadAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	i := sort.Search(len(d.ex), func(i int) bool { return d.ex[i].End() > off })
	if i < len(d.ex) && d.ex[i].Offset <= off && d.ex[i].End() >= end && end <= d.Size() {
		clear(p)
		return len(p), nil
	}
	n, err := d.Disk.ReadAt(p, off)
	for ; i < len(d.ex) && d.ex[i].Offset < off+int64(n); i++ {
		from := max(d.ex[i].Offset, off) - off
		to := min(d.ex[i].End(), off+int64(n)) - off
		clear(p[from:to])
	}
	return n, err
}

// Allocated is the underlying disk's allocated ranges less the excluded.
func (d *excluding) Allocated(ctx context.Context) ([]Extent, error) {
	a, err := d.Disk.Allocated(ctx)
	if err != nil {
		return nil, err
	}
	return Subtract(a, d.ex), nil
}

// Subtract returns the parts of a (sorted, disjoint) outside b (sorted,
// disjoint), sorted and disjoint.
func Subtract(a, b []Extent) []Extent {
	var out []Extent
	k := 0
	for _, e := range a {
		s, end := e.Offset, e.End()
		for k < len(b) && b[k].End() <= s {
			k++
		}
		for j := k; j < len(b) && b[j].Offset < end && s < end; j++ {
			if b[j].Offset > s {
				out = append(out, Extent{Offset: s, Length: b[j].Offset - s})
			}
			s = max(s, b[j].End())
		}
		if s < end {
			out = append(out, Extent{Offset: s, Length: end - s})
		}
	}
	return out
}

// Union returns the ranges in a or b (each sorted), sorted, disjoint and
// coalesced.
func Union(a, b []Extent) []Extent {
	all := append(append(make([]Extent, 0, len(a)+len(b)), a...), b...)
	sort.Slice(all, func(i, j int) bool { return all[i].Offset < all[j].Offset })
	var out []Extent
	for _, e := range all {
		if e.Length <= 0 {
			continue
		}
		if n := len(out); n > 0 && e.Offset <= out[n-1].End() {
			out[n-1].Length = max(out[n-1].End(), e.End()) - out[n-1].Offset
			continue
		}
		out = append(out, e)
	}
	return out
}
