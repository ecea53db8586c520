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
	hint     repo.ChunkID // the target ID a reference point gives; zero: unknown
	from, to int
}

// disk copies the chunks of one disk's index (source IDs) that the target
// lacks, Options.Workers at a time, and returns the index with target IDs.
func (c *copier) disk(ctx context.Context, ix *repo.Index, hints []repo.ChunkID, s *sampler) (*repo.Index, error) {
	n := len(ix.Entries)
	order := make([]int, n)
	for k := range order {
		order[k] = k
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(ix.Entries[a].ID[:], ix.Entries[b].ID[:]) })
	dst := make([]repo.ChunkID, n)
	jobs := make(chan group)
	g, gctx := errgroup.WithContext(ctx)
	for range c.o.Workers {
		g.Go(func() error {
			w := c.newWorker(s)
			for job := range jobs {
				id, err := w.chunk(gctx, job.src, job.hint)
				if err != nil {
					return err
				}
				for _, k := range order[job.from:job.to] {
					dst[k] = id // each position is written by one worker
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
				if hints != nil && job.hint == (repo.ChunkID{}) {
					job.hint = hints[order[job.to]]
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
	tix := &repo.Index{DiskSize: ix.DiskSize, ChunkSize: ix.ChunkSize, Entries: make([]repo.IndexEntry, n)}
	for k, e := range ix.Entries {
		tix.Entries[k] = repo.IndexEntry{N: e.N, ID: dst[k]}
	}
	return tix, nil
}

// worker copies chunks one at a time with its own hashers and buffer.
type worker struct {
	c      *copier
	hs, ht *repo.Hasher // source, target
	buf    []byte
	sample *sampler
}

func (c *copier) newWorker(s *sampler) *worker {
	return &worker{c: c, hs: c.src.NewHasher(), ht: c.dst.NewHasher(), sample: s}
}

// chunk makes sure the target holds the chunk with source ID src and
// returns its target ID: present under the hint, else read and opened at
// the source, re-hashed with the target's key, and sent unless present.
func (w *worker) chunk(ctx context.Context, src, hint repo.ChunkID) (repo.ChunkID, error) {
	c := w.c
	if hint != (repo.ChunkID{}) {
		ok, err := c.touch(ctx, hint)
		if err != nil {
			return repo.ChunkID{}, err
		}
		if ok {
			c.p.chunksPresent.Add(1)
			c.p.known.Add(1)
			return hint, nil
		}
	}
	var plain []byte
	err := c.r.do(ctx, "read source chunk", func() (err error) {
		plain, err = c.src.GetChunk(ctx, w.hs, src, w.buf)
		return err
	})
	if err != nil {
		return repo.ChunkID{}, fmt.Errorf("source: %w", err)
	}
	w.buf = plain[:0]
	c.p.bytesRead.Add(int64(len(plain)))
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
