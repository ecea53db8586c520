package repocopy

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"golang.org/x/sync/errgroup"
)

// group is the run of a disk's entries (positions order[from:to] of the
// index sorted by source ID) that hold one chunk: it is copied once.
type group struct {
	src      repo.ChunkID
	hint     []repo.ChunkID // the target IDs a reference point gives (see hints); nil: unknown
	from, to int
}

// targetChunkSize is the chunk size of a copied disk whose source chunks
// are cs: the target's own when it divides cs (each source chunk is split
// into smaller target chunks: a target made for a link that drops often
// uses small ones), else cs.
func (c *copier) targetChunkSize(cs int) int {
	if t := c.dst.Config().ChunkSize; t > 0 && t < cs && cs%t == 0 {
		return t
	}
	return cs
}

// disk copies the chunks of one disk's index (source IDs) that the target
// lacks, Options.Workers at a time, and returns the index with target IDs
// in the target chunk size. hints, when set, has k = source / target
// chunk size entries per source entry (see hints).
func (c *copier) disk(ctx context.Context, ix *repo.Index, hints []repo.ChunkID, s *sampler) (*repo.Index, error) {
	n := len(ix.Entries)
	tcs := c.targetChunkSize(ix.ChunkSize)
	k := ix.ChunkSize / tcs
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(ix.Entries[a].ID[:], ix.Entries[b].ID[:]) })
	dst := make([]repo.ChunkID, n*k) // zero: no target chunk (all zeros)
	jobs := make(chan group)
	g, gctx := errgroup.WithContext(ctx)
	for range c.o.Workers {
		g.Go(func() error {
			w := c.newWorker(s, tcs, k)
			for job := range jobs {
				ids, err := w.chunk(gctx, job.src, job.hint)
				if err != nil {
					return err
				}
				for _, e := range order[job.from:job.to] {
					copy(dst[e*k:(e+1)*k], ids) // each position is written by one worker
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(jobs)
		for a := 0; a < n; {
			job := group{src: ix.Entries[order[a]].ID, from: a}
			for job.to = a; job.to < n && ix.Entries[order[job.to]].ID == job.src; job.to++ {
				if e := order[job.to]; hints != nil && job.hint == nil && known(hints[e*k:(e+1)*k]) {
					job.hint = hints[e*k : (e+1)*k]
				}
			}
			select {
			case jobs <- job:
			case <-gctx.Done():
				return gctx.Err()
			}
			a = job.to
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	tix := &repo.Index{DiskSize: ix.DiskSize, ChunkSize: tcs, Entries: make([]repo.IndexEntry, 0, n*k)}
	for e, en := range ix.Entries {
		for j := range k {
			if id := dst[e*k+j]; id != (repo.ChunkID{}) {
				tix.Entries = append(tix.Entries, repo.IndexEntry{N: en.N*uint64(k) + uint64(j), ID: id})
			}
		}
	}
	return tix, nil
}

// known reports whether a source entry's hints hold a target ID.
func known(h []repo.ChunkID) bool {
	for _, id := range h {
		if id != (repo.ChunkID{}) {
			return true
		}
	}
	return false
}

// worker copies chunks one at a time with its own hashers and buffer.
type worker struct {
	c      *copier
	hs, ht *repo.Hasher // source, target
	buf    []byte
	sample *sampler
	tcs, k int // target chunk size; target chunks per source chunk
}

func (c *copier) newWorker(s *sampler, tcs, k int) *worker {
	return &worker{c: c, hs: c.src.NewHasher(), ht: c.dst.NewHasher(), sample: s, tcs: tcs, k: k}
}

// chunk makes sure the target holds the source chunk src and returns its
// target IDs (k of them; zero for an all-zero piece of a split chunk):
// present under the hint, else read and opened at the source, split,
// re-hashed with the target's key, and sent unless present.
func (w *worker) chunk(ctx context.Context, src repo.ChunkID, hint []repo.ChunkID) ([]repo.ChunkID, error) {
	c := w.c
	if hint != nil {
		ok, err := w.present(ctx, hint)
		if err != nil || ok {
			return hint, err
		}
	}
	var plain []byte
	err := c.r.do(ctx, "read source chunk", func() (err error) {
		plain, err = c.src.GetChunk(ctx, w.hs, src, w.buf)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	w.buf = plain[:0]
	c.p.bytesRead.Add(int64(len(plain)))
	ids := make([]repo.ChunkID, w.k)
	for j := 0; j*w.tcs < len(plain) && j < w.k; j++ {
		piece := plain[j*w.tcs : min(len(plain), (j+1)*w.tcs)]
		if w.k > 1 && allZero(piece) {
			continue // a zero piece has no index entry, as in a backup
		}
		if ids[j], err = w.store(ctx, piece); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// present checks that every target chunk a hint names is at the target.
func (w *worker) present(ctx context.Context, hint []repo.ChunkID) (bool, error) {
	var n int64
	for _, id := range hint {
		if id == (repo.ChunkID{}) {
			continue
		}
		ok, err := w.c.touch(ctx, id)
		if err != nil || !ok {
			return false, err
		}
		n++
	}
	w.c.p.chunksPresent.Add(n)
	w.c.p.known.Add(n)
	return true, nil
}

// store sends one target chunk unless the target has it, and returns its
// target ID.
func (w *worker) store(ctx context.Context, plain []byte) (repo.ChunkID, error) {
	c := w.c
	id := w.ht.Sum(plain)
	ok, err := c.touch(ctx, id)
	if err != nil {
		return repo.ChunkID{}, err
	}
	if ok {
		c.p.chunksPresent.Add(1)
		return id, nil
	}
	var size int
	err = c.r.do(ctx, "send chunk", func() (err error) {
		size, err = c.dst.PutChunk(ctx, id, plain)
		return err
	})
	if err != nil {
		return repo.ChunkID{}, fmt.Errorf("target: %w", err)
	}
	c.p.chunksSent.Add(1)
	c.p.bytesSent.Add(int64(size))
	w.sample.add(id)
	return id, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// touch asks the target whether it holds a chunk (and protects it from a
// concurrent GC).
func (c *copier) touch(ctx context.Context, id repo.ChunkID) (bool, error) {
	var ok bool
	err := c.r.do(ctx, "check chunk", func() (err error) {
		ok, err = c.dst.TouchChunk(ctx, id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("target: %w", err)
	}
	return ok, nil
}
