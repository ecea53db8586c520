package nbd

import (
	"cmp"
	"encoding/binary"
	"math"
	"slices"
)

const (
	maxServerDescriptors = 1 << 16 // descriptors per BLOCK_STATUS reply
	maxReadChunks        = 256     // content chunks per READ reply
	minHoleChunk         = 4096    // zero ranges smaller than this are sent as data
)

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// allocation returns base:allocation descriptors covering [off, off+length)
// from the export's Allocation function (all data when it has none). The
// reply may stop short of the range after maxN descriptors.
func (t *transmission) allocation(off, length int64, maxN int) ([]descriptor, error) {
	if t.exp.Allocation == nil {
		return []descriptor{{length: uint32(length)}}, nil
	}
	ext, err := t.exp.Allocation(t.ctx, off, length)
	if err != nil {
		return nil, err
	}
	return normalizeExtents(ext, off, length, maxN), nil
}

// normalizeExtents clips ext to [off, off+length), fills gaps with
// allocated data (flags 0), keeps only the hole and zero flags and merges
// neighbours with equal flags. length must fit in 32 bits.
func normalizeExtents(ext []Extent, off, length int64, maxN int) []descriptor {
	sorted := slices.Clone(ext)
	slices.SortFunc(sorted, func(a, b Extent) int { return cmp.Compare(a.Offset, b.Offset) })
	var out []descriptor
	emit := func(n int64, flags uint32) {
		if k := len(out); k > 0 && out[k-1].flags == flags {
			out[k-1].length += uint32(n)
			return
		}
		out = append(out, descriptor{length: uint32(n), flags: flags})
	}
	cur, end := off, off+length
	for _, e := range sorted {
		if len(out) >= maxN || cur >= end {
			break
		}
		if e.Length <= 0 || e.Offset < 0 {
			continue
		}
		eEnd := e.Offset + min(e.Length, math.MaxInt64-e.Offset)
		s, stop := max(e.Offset, cur), min(eEnd, end)
		if stop <= s {
			continue
		}
		if s > cur {
			emit(s-cur, 0)
		}
		emit(stop-s, e.Flags&(StateHole|StateZero))
		cur = stop
	}
	if cur < end && len(out) < maxN {
		emit(end-cur, 0)
	}
	return out
}

// segment is a part of a READ reply: data, or zeros sent as a hole.
type segment struct {
	offset int64
	length int64
	zero   bool
}

// readPlan splits a structured READ into data and zero segments. With
// NBD_CMD_FLAG_DF or without Allocation it is one data segment;
// Allocation errors also fall back to reading everything.
func (t *transmission) readPlan(req request) []segment {
	off, n := int64(req.offset), int64(req.length)
	all := []segment{{offset: off, length: n}}
	if req.flags&cmdFlagDF != 0 || t.exp.Allocation == nil {
		return all
	}
	descs, err := t.allocation(off, n, maxServerDescriptors)
	if err != nil {
		return all
	}
	var segs []segment
	pos := off
	for _, d := range descs {
		zero := d.flags&StateZero != 0 && d.length >= minHoleChunk
		if k := len(segs); k > 0 && segs[k-1].zero == zero {
			segs[k-1].length += int64(d.length)
		} else {
			segs = append(segs, segment{offset: pos, length: int64(d.length), zero: zero})
		}
		pos += int64(d.length)
	}
	if pos != off+n || len(segs) > maxReadChunks {
		return all
	}
	return segs
}
