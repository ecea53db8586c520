package repocopy

import (
	"context"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// point copies one point under a shared lock of the target and commits
// it last.
func (c *copier) point(ctx context.Context, m *repo.Manifest) (*repo.Manifest, error) {
	var lock *repo.Lock
	err := c.r.do(ctx, "lock target", func() (err error) {
		lock, err = c.dst.Lock(ctx, repo.LockShared)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	defer func() { _ = lock.Release() }()

	out := &repo.Manifest{ID: m.ID, VM: m.VM, Time: m.Time, Hostname: m.Hostname, Notes: m.Notes, Config: m.Config,
		CopiedFrom: &repo.CopiedFrom{Repository: c.srcID, Point: m.ID}}
	ref := c.reference(m)
	sample := newSampler(c.o.VerifySample)
	indexes := make([]*repo.Index, len(m.Disks))
	for i, d := range m.Disks {
		var ix *repo.Index
		err := c.r.do(ctx, "load source index", func() (err error) {
			ix, err = c.src.LoadIndex(ctx, m, i)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		hints, err := c.hints(ctx, ref, i, ix)
		if err != nil {
			return nil, err
		}
		tix, err := c.disk(ctx, ix, hints, sample)
		if err != nil {
			return nil, fmt.Errorf("disk %d: %w", i, err)
		}
		hash, err := c.saveIndex(ctx, m.ID, i, tix)
		if err != nil {
			return nil, fmt.Errorf("disk %d: %w", i, err)
		}
		dm := d
		dm.IndexHash, dm.Chunks, dm.ChunkSize = hash, len(tix.Entries), tix.ChunkSize
		out.Disks = append(out.Disks, dm)
		indexes[i] = tix
	}
	if err := c.verify(ctx, out, indexes, sample.ids); err != nil {
		return nil, err
	}
	out.CopiedFrom.Time = c.now().UTC()
	err = c.r.do(ctx, "commit", func() error { return c.dst.CommitPoint(ctx, out) })
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	return out, nil
}

// saveIndex stores a disk's index at the target and checks the hash the
// target reports (an agent hashes what it received) against our own.
func (c *copier) saveIndex(ctx context.Context, point string, disk int, ix *repo.Index) (repo.ChunkID, error) {
	plain, err := ix.MarshalBinary()
	if err != nil {
		return repo.ChunkID{}, err
	}
	want := c.dst.NewHasher().Sum(plain)
	var hash repo.ChunkID
	err = c.r.do(ctx, "save index", func() (err error) {
		hash, err = c.dst.SaveIndex(ctx, point, disk, ix)
		return err
	})
	if err != nil {
		return repo.ChunkID{}, fmt.Errorf("target: %w", err)
	}
	if hash != want {
		return repo.ChunkID{}, fmt.Errorf("target: %w: it hashed the index to %s, the copy to %s", repo.ErrCorrupt, hash, want)
	}
	return hash, nil
}

// reference returns the point both repositories hold that is the best
// guide to m's chunks: the newest of m's VM no newer than m, else the
// oldest newer one; nil when there is none.
func (c *copier) reference(m *repo.Manifest) *pair {
	var before, after *pair
	for _, p := range c.shared {
		if p.src.VM != m.VM || p.src.ID == m.ID {
			continue
		}
		switch t := p.src.Time; {
		case !t.After(m.Time):
			if before == nil || t.After(before.src.Time) {
				before = &pair{src: p.src, dst: p.dst}
			}
		case after == nil || t.Before(after.src.Time):
			after = &pair{src: p.src, dst: p.dst}
		}
	}
	if before != nil {
		return before
	}
	return after
}

// hints pairs the chunks of ix (disk i of the point being copied, source
// IDs) with target IDs through the reference point: where the
// reference's source index has the same ID at the same position, its
// target index has the target IDs — k of them per source chunk, k the
// source chunk size over the target's (a zero ID: a piece that was all
// zeros). hints[e*k+j] belongs to piece j of ix.Entries[e]; nil when there
// is no usable reference.
func (c *copier) hints(ctx context.Context, ref *pair, i int, ix *repo.Index) ([]repo.ChunkID, error) {
	if ref == nil || i >= len(ref.src.Disks) || i >= len(ref.dst.Disks) {
		return nil, nil
	}
	tcs := c.targetChunkSize(ix.ChunkSize)
	if s, d := ref.src.Disks[i], ref.dst.Disks[i]; s.Size != ix.DiskSize || s.ChunkSize != ix.ChunkSize ||
		d.Size != ix.DiskSize || d.ChunkSize != tcs {
		return nil, nil
	}
	var rs, rd *repo.Index
	err := c.r.do(ctx, "load reference index", func() (err error) {
		if rs, err = c.src.LoadIndex(ctx, ref.src, i); err != nil {
			return fmt.Errorf("source: %w", err)
		}
		if rd, err = c.dst.LoadIndex(ctx, ref.dst, i); err != nil {
			return fmt.Errorf("target: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reference point %s: %w", ref.src.ID, err)
	}
	k := ix.ChunkSize / tcs
	hints := make([]repo.ChunkID, len(ix.Entries)*k)
	j, t := 0, 0
	for e, en := range ix.Entries {
		for j < len(rs.Entries) && rs.Entries[j].N < en.N {
			j++
		}
		if j == len(rs.Entries) || rs.Entries[j].N != en.N || rs.Entries[j].ID != en.ID {
			continue
		}
		first := en.N * uint64(k)
		for t < len(rd.Entries) && rd.Entries[t].N < first {
			t++
		}
		for ; t < len(rd.Entries) && rd.Entries[t].N < first+uint64(k); t++ {
			hints[e*k+int(rd.Entries[t].N-first)] = rd.Entries[t].ID
		}
	}
	return hints, nil
}
