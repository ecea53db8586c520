package vsphere

import (
	"context"
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// cbtDisk is a snapshot disk whose allocated and changed areas come from
// vSphere's changed block tracking (QueryChangedDiskAreas).
type cbtDisk struct {
	source.Disk
	env *Env
	d   SnapshotDisk
}

var (
	_ source.Disk          = (*cbtDisk)(nil)
	_ source.ChangeTracker = (*cbtDisk)(nil)
)

func newCBTDisk(inner source.Disk, env *Env, d SnapshotDisk) *cbtDisk {
	return &cbtDisk{Disk: inner, env: env, d: d}
}

// ChangeID is the snapshot backing's change ID ("" without CBT).
func (c *cbtDisk) ChangeID() string { return c.d.ChangeID }

// Allocated asks CBT for the disk's allocated areas (change ID "*"); when
// CBT cannot answer, the transport's own answer stands.
func (c *cbtDisk) Allocated(ctx context.Context) ([]source.Extent, error) {
	if c.d.ChangeID != "" {
		ext, err := c.query(ctx, "*")
		if err == nil {
			return ext, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c.env.Logger.Warn("changed block tracking gave no allocated areas; reading what the transport reports", "disk", c.d.File.String(), "err", err)
	}
	return c.Disk.Allocated(ctx)
}

// Changed asks CBT for the areas written since prev. Anything that makes
// the answer untrustworthy (no ID, an ID of another tracking instance, an
// ID vSphere refuses after a CBT reset or a move) gives Known=false and
// the reason: the pipeline then reads everything and compares hashes.
func (c *cbtDisk) Changed(ctx context.Context, prev string) (source.Changes, error) {
	switch {
	case prev == "":
		return source.Changes{Reason: "the previous point recorded no change ID for this disk"}, nil
	case c.d.ChangeID == "":
		return source.Changes{Reason: "the snapshot's disk has no change ID (changed block tracking is not active yet)"}, nil
	case changeInstance(prev) != changeInstance(c.d.ChangeID):
		return source.Changes{Reason: fmt.Sprintf("change ID %q belongs to another tracking instance than %q (CBT was reset or the disk moved)", prev, c.d.ChangeID)}, nil
	}
	ext, err := c.query(ctx, prev)
	if err != nil {
		if ctx.Err() != nil {
			return source.Changes{}, ctx.Err()
		}
		return source.Changes{Reason: fmt.Sprintf("vSphere refused change ID %q (%v)", prev, err)}, nil
	}
	return source.Changes{Extents: ext, Known: true}, nil
}

// changeInstance is the tracking instance of a change ID "UUID/SEQ".
func changeInstance(id string) string {
	inst, _, _ := strings.Cut(id, "/")
	return inst
}

// query collects QueryChangedDiskAreas over the whole disk: each answer
// covers [StartOffset, StartOffset+Length), the next starts after it.
func (c *cbtDisk) query(ctx context.Context, changeID string) ([]source.Extent, error) {
	snap := c.env.Snapshot
	size := c.d.Capacity
	var out []source.Extent
	for start := int64(0); start < size; {
		res, err := methods.QueryChangedDiskAreas(ctx, c.env.Client.Client, &types.QueryChangedDiskAreas{
			This: c.env.VM.Reference(), Snapshot: &snap, DeviceKey: c.d.Key, StartOffset: start, ChangeId: changeID})
		if err != nil {
			return nil, err
		}
		info := res.Returnval
		for _, a := range info.ChangedArea {
			if a.Length <= 0 || a.Start < 0 || a.Start >= size {
				continue
			}
			out = append(out, source.Extent{Offset: a.Start, Length: min(a.Length, size-a.Start)})
		}
		next := info.StartOffset + info.Length
		if next <= start {
			return nil, fmt.Errorf("QueryChangedDiskAreas at %d made no progress (answered %d+%d)", start, info.StartOffset, info.Length)
		}
		start = next
	}
	return source.Union(out, nil), nil
}
