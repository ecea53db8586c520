package nbd

import (
	"context"
	"fmt"
)

// Extent is a range of an export with the flags of one meta context: for
// base:allocation StateHole and StateZero, for qemu:dirty-bitmap:NAME
// StateDirty.
type Extent struct {
	Offset int64
	Length int64
	Flags  uint32
}

// End returns Offset+Length.
func (e Extent) End() int64 { return e.Offset + e.Length }

// BlockStatus returns the extents of contextName (which must have been
// negotiated through ClientOptions.MetaContexts) covering [off, off+length),
// sorted, contiguous, with neighbours of equal flags merged. It sends as
// many NBD_CMD_BLOCK_STATUS requests as the server needs to cover the range.
func (c *Client) BlockStatus(ctx context.Context, contextName string, off, length int64) ([]Extent, error) {
	id, ok := c.contexts[contextName]
	if !ok {
		return nil, fmt.Errorf("nbd: meta context %q was not negotiated", contextName)
	}
	if off < 0 || length < 0 || off > c.info.Size || length > c.info.Size-off {
		return nil, fmt.Errorf("nbd: block status [%d,+%d) outside export of %d bytes", off, length, c.info.Size)
	}
	var out []Extent
	for length > 0 {
		n := min(length, maxBlockStatusLen)
		descs, err := c.blockStatusOnce(ctx, id, off, n)
		if err != nil {
			return nil, fmt.Errorf("nbd: block status %q at %d: %w", contextName, off, err)
		}
		var got int64
		out, got = appendDescriptors(out, off, n, descs)
		off, length = off+got, length-got
	}
	return out, nil
}

// appendDescriptors appends the descriptors of a reply for [off, off+n) as
// extents, clipped to n, and returns how many bytes they cover.
func appendDescriptors(out []Extent, off, n int64, descs []descriptor) ([]Extent, int64) {
	got := int64(0)
	for _, d := range descs {
		l := min(int64(d.length), n-got)
		out = appendExtent(out, Extent{Offset: off + got, Length: l, Flags: d.flags})
		if got += l; got == n {
			break
		}
	}
	return out, got
}

func (c *Client) blockStatusOnce(ctx context.Context, id uint32, off, n int64) ([]descriptor, error) {
	req := request{typ: cmdBlockStatus, offset: uint64(off), length: uint32(n)}
	cl, err := c.start(ctx, req, nil, nil)
	if err != nil {
		return nil, err
	}
	if err := c.wait(ctx, cl); err != nil {
		return nil, err
	}
	descs := cl.status[id]
	if len(descs) == 0 {
		return nil, protoErrorf("no extents for context %d", id)
	}
	return descs, nil
}

// appendExtent appends e, merging it into the last extent when contiguous
// with equal flags.
func appendExtent(out []Extent, e Extent) []Extent {
	if e.Length <= 0 {
		return out
	}
	if n := len(out); n > 0 && out[n-1].End() == e.Offset && out[n-1].Flags == e.Flags {
		out[n-1].Length += e.Length
		return out
	}
	return append(out, e)
}

// FilterExtents returns the extents for which keep is true, merging
// neighbours that become contiguous.
func FilterExtents(ext []Extent, keep func(Extent) bool) []Extent {
	var out []Extent
	for _, e := range ext {
		if !keep(e) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End() == e.Offset {
			out[n-1].Length += e.Length
			out[n-1].Flags &= e.Flags
			continue
		}
		out = append(out, e)
	}
	return out
}

// AllocatedExtents lists the extents of the whole export that base:allocation
// reports as neither hole nor zero, i.e. the ranges a backup must read.
// "base:allocation" must be among ClientOptions.MetaContexts.
func (c *Client) AllocatedExtents(ctx context.Context) ([]Extent, error) {
	ext, err := c.BlockStatus(ctx, ContextBaseAllocation, 0, c.info.Size)
	if err != nil {
		return nil, err
	}
	return FilterExtents(ext, func(e Extent) bool { return e.Flags&(StateHole|StateZero) == 0 }), nil
}

// DirtyExtents lists the extents of the whole export marked dirty in the
// given context, e.g. "qemu:dirty-bitmap:bm0".
func (c *Client) DirtyExtents(ctx context.Context, contextName string) ([]Extent, error) {
	ext, err := c.BlockStatus(ctx, contextName, 0, c.info.Size)
	if err != nil {
		return nil, err
	}
	return FilterExtents(ext, func(e Extent) bool { return e.Flags&StateDirty != 0 }), nil
}
