package repocopy

import (
	"context"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// plan lists both repositories, selects the points to copy and sets aside
// those the target has (res.Skipped). It fails when a reference resolves
// to nothing or a point ID is taken at the target by another point.
func (c *copier) plan(ctx context.Context, res *Result) ([]*repo.Manifest, error) {
	var srcPoints, dstPoints []*repo.Manifest
	err := c.r.do(ctx, "list source points", func() (err error) {
		srcPoints, err = c.src.ListPoints(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	err = c.r.do(ctx, "list target points", func() (err error) {
		dstPoints, err = c.dst.ListPoints(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	selected, err := Select(srcPoints, c.o.VM, c.o.Points)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if c.o.Match != nil {
		kept := selected[:0:0]
		for _, m := range selected {
			if c.o.Match(m.VM) {
				kept = append(kept, m)
			}
		}
		selected = kept
	}
	have := make(map[string]*repo.Manifest, len(dstPoints))
	newest := map[string]time.Time{} // per VM, at the target
	for _, m := range dstPoints {
		have[m.ID] = m
		if m.Time.After(newest[m.VM]) {
			newest[m.VM] = m.Time
		}
	}
	for _, m := range srcPoints {
		if d := have[m.ID]; d != nil && samePoint(m, d) {
			c.shared[m.ID] = pair{src: m, dst: d}
		}
	}
	var todo []*repo.Manifest
	for _, m := range selected {
		d := have[m.ID]
		switch {
		case d == nil && c.o.NewerOnly && !m.Time.After(newest[m.VM]):
			c.log.Debug("not copying a point older than the target's newest of its VM", "point", m.ID, "vm", m.VM)
		case d == nil:
			todo = append(todo, m)
		case !samePoint(m, d):
			return nil, fmt.Errorf("point %s: %w (source: %s at %s; target: %s at %s)", m.ID, ErrConflict,
				m.VM, m.Time.UTC().Format("2006-01-02T15:04:05Z"), d.VM, d.Time.UTC().Format("2006-01-02T15:04:05Z"))
		default:
			res.Skipped = append(res.Skipped, m.ID)
			c.p.pointsSkipped.Add(1)
		}
	}
	return todo, nil
}

// samePoint reports whether two manifests with one ID are the same point:
// same VM, time and disk sizes (a copy may have split the chunks).
func samePoint(a, b *repo.Manifest) bool {
	if a.VM != b.VM || !a.Time.Equal(b.Time) || len(a.Disks) != len(b.Disks) {
		return false
	}
	for i := range a.Disks {
		if a.Disks[i].Size != b.Disks[i].Size {
			return false
		}
	}
	return true
}

// Select returns the points of ms (oldest first, as ListPoints returns
// them) that a copy of vm's points named by refs takes, oldest first and
// each once: every point of vm ("" any) without refs; else the points refs
// name (repo.ResolveRef) among vm's points.
func Select(ms []*repo.Manifest, vm string, refs []string) ([]*repo.Manifest, error) {
	var pool []*repo.Manifest
	for _, m := range ms {
		if vm == "" || m.VM == vm {
			pool = append(pool, m)
		}
	}
	if len(refs) == 0 {
		if vm != "" && len(pool) == 0 {
			return nil, fmt.Errorf("VM %s: %w", vm, repo.ErrPointNotFound)
		}
		return pool, nil
	}
	want := map[string]bool{}
	for _, ref := range refs {
		m, err := repo.ResolveRef(pool, ref)
		if err != nil {
			if vm != "" {
				return nil, fmt.Errorf("among the points of VM %s: %w", vm, err)
			}
			return nil, err
		}
		want[m.ID] = true
	}
	var out []*repo.Manifest
	for _, m := range pool {
		if want[m.ID] {
			out = append(out, m)
		}
	}
	return out, nil
}
