package repocopy

import (
	"context"
	"fmt"
	"io"
	"runtime"

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
	var indexes []*repo.IndexEncoder // the target's, kept (in temporary files) for the check
	defer func() {
		for _, ix := range indexes {
			_ = ix.Close()
		}
	}()
	for i, d := range m.Disks {
		tix, err := c.copyDisk(ctx, m, i, ref, sample)
		if err != nil {
			return nil, fmt.Errorf("disk %d: %w", i, err)
		}
		indexes = append(indexes, tix)
		hash, err := c.saveIndex(ctx, m.ID, i, tix)
		if err != nil {
			return nil, fmt.Errorf("disk %d: %w", i, err)
		}
		dm := d
		dm.IndexHash, dm.Chunks = hash, tix.Count()
		_, dm.ChunkSize = tix.Geometry()
		out.Disks = append(out.Disks, dm)
	}
	// The buffers the indexes were sealed in (a whole index each) are
	// garbage now; collect them before the check reads each index back,
	// so the two do not add up in the process's peak memory.
	runtime.GC()
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

// copyDisk copies disk i of m and returns its index with target IDs. The
// source index and the reference point's are spilled into temporary
// files first (each is held in memory only while it is loaded), so the
// copy itself holds none of them.
func (c *copier) copyDisk(ctx context.Context, m *repo.Manifest, i int, ref *pair, s *sampler) (*repo.IndexEncoder, error) {
	src, err := c.spillIndex(ctx, "load source index", c.src, m, i)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer func() { _ = src.Close() }()
	h, err := c.hints(ctx, ref, i, src)
	if err != nil {
		return nil, err
	}
	defer h.close()
	return c.disk(ctx, src, h, s)
}

// indexLoader is a repository an index is read from; one that can also
// walk an index in place (*repo.Repository) is not made to decode it.
type indexLoader interface {
	LoadIndex(ctx context.Context, m *repo.Manifest, disk int) (*repo.Index, error)
}

type indexWalker interface {
	WalkIndex(ctx context.Context, m *repo.Manifest, disk int, ix *repo.Index, fn func(repo.IndexEntry)) error
}

// spillIndex reads disk i's index of m from r into an encoder (a
// temporary file past a few MiB), retrying transient errors.
func (c *copier) spillIndex(ctx context.Context, what string, r indexLoader, m *repo.Manifest, i int) (*repo.IndexEncoder, error) {
	var enc *repo.IndexEncoder
	err := c.r.do(ctx, what, func() error {
		var err error
		enc, err = spillIndexOnce(ctx, r, m, i)
		return err
	})
	return enc, err
}

func spillIndexOnce(ctx context.Context, r indexLoader, m *repo.Manifest, i int) (*repo.IndexEncoder, error) {
	if i < 0 || i >= len(m.Disks) {
		return nil, fmt.Errorf("point %s has no disk %d (it has %d)", m.ID, i, len(m.Disks))
	}
	d := m.Disks[i]
	enc, err := repo.NewIndexEncoder(d.Size, d.ChunkSize, repo.EncoderOptions{})
	if err != nil {
		return nil, err
	}
	var addErr error
	add := func(e repo.IndexEntry) {
		if addErr == nil {
			addErr = enc.Add(e.N, e.ID)
		}
	}
	if w, ok := r.(indexWalker); ok {
		var ix repo.Index
		err = w.WalkIndex(ctx, m, i, &ix, add)
	} else {
		var ix *repo.Index
		if ix, err = r.LoadIndex(ctx, m, i); err == nil {
			for _, e := range ix.Entries {
				add(e)
			}
		}
	}
	if err == nil {
		err = addErr
	}
	if err != nil {
		_ = enc.Close()
		return nil, err
	}
	return enc, nil
}

// saveIndex stores a disk's index at the target and checks the hash the
// target reports (an agent hashes what it received) against our own.
func (c *copier) saveIndex(ctx context.Context, point string, disk int, ix *repo.IndexEncoder) (repo.ChunkID, error) {
	want, err := ix.Hash(c.dst.NewHasher())
	if err != nil {
		return repo.ChunkID{}, err
	}
	var hash repo.ChunkID
	err = c.r.do(ctx, "save index", func() (err error) {
		hash, err = c.dst.SaveEncodedIndex(ctx, point, disk, ix)
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

// hinter pairs the chunks of a disk being copied (source IDs, in order)
// with target IDs through the reference point: where the reference's
// source index has the same ID at the same position, its target index has
// the target IDs — k of them per source chunk, k the source chunk size
// over the target's (a zero ID: a piece that was all zeros). It reads the
// reference's two indexes from temporary files alongside the disk's. A
// nil hinter knows nothing.
type hinter struct {
	k      int
	rs, rd *repo.IndexEncoder // the reference's source and target indexes
	s, d   *repo.IndexEntryReader
	se, de repo.IndexEntry // the next entry of each; N = ^0 at the end
}

// hints returns the hinter of disk i through ref; nil when there is no
// usable reference.
func (c *copier) hints(ctx context.Context, ref *pair, i int, src *repo.IndexEncoder) (*hinter, error) {
	size, scs := src.Geometry()
	if ref == nil || i >= len(ref.src.Disks) || i >= len(ref.dst.Disks) {
		return nil, nil
	}
	tcs := c.targetChunkSize(scs)
	if s, d := ref.src.Disks[i], ref.dst.Disks[i]; s.Size != size || s.ChunkSize != scs ||
		d.Size != size || d.ChunkSize != tcs {
		return nil, nil
	}
	rs, err := c.spillIndex(ctx, "load reference index", c.src, ref.src, i)
	if err != nil {
		return nil, fmt.Errorf("reference point %s: source: %w", ref.src.ID, err)
	}
	rd, err := c.spillIndex(ctx, "load reference index", c.dst, ref.dst, i)
	if err != nil {
		_ = rs.Close()
		return nil, fmt.Errorf("reference point %s: target: %w", ref.src.ID, err)
	}
	h := &hinter{k: scs / tcs, rs: rs, rd: rd, s: rs.Entries(), d: rd.Entries()}
	if err := h.advance(h.s, &h.se); err != nil {
		h.close()
		return nil, err
	}
	if err := h.advance(h.d, &h.de); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

// advance reads the next entry of r into e (N = ^0 at the end).
func (h *hinter) advance(r *repo.IndexEntryReader, e *repo.IndexEntry) error {
	next, err := r.Next()
	if err == io.EOF {
		next = repo.IndexEntry{N: ^uint64(0)}
	} else if err != nil {
		return err
	}
	*e = next
	return nil
}

// at returns the target IDs of entry e's pieces, nil when unknown; the
// entries must come in increasing order.
func (h *hinter) at(e repo.IndexEntry) ([]repo.ChunkID, error) {
	if h == nil {
		return nil, nil
	}
	for h.se.N < e.N {
		if err := h.advance(h.s, &h.se); err != nil {
			return nil, err
		}
	}
	if h.se.N != e.N || h.se.ID != e.ID {
		return nil, nil
	}
	k := uint64(h.k)
	first := e.N * k
	for h.de.N < first {
		if err := h.advance(h.d, &h.de); err != nil {
			return nil, err
		}
	}
	var ids []repo.ChunkID
	for h.de.N < first+k {
		if ids == nil {
			ids = make([]repo.ChunkID, k)
		}
		ids[h.de.N-first] = h.de.ID
		if err := h.advance(h.d, &h.de); err != nil {
			return nil, err
		}
	}
	return ids, nil // nil: no piece known (known() was false)
}

func (h *hinter) close() {
	if h != nil {
		_ = h.rs.Close()
		_ = h.rd.Close()
	}
}
