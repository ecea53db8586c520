package repocopy

import (
	"context"
	"fmt"
	"io"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"golang.org/x/sync/errgroup"
)

// window is how many entries of a disk may be in flight ahead of the
// index being written (the copy holds their target IDs until then).
const window = 1024

// recentChunks is how many distinct source chunks a disk's copy
// remembers to copy a repeat once; a chunk repeated further apart is read
// again at the source and found present at the target (nothing sent).
const recentChunks = 4096

// slot is the copy of one source chunk: its k target IDs once done is
// closed.
type slot struct {
	done chan struct{}
	ids  []repo.ChunkID
}

// job asks a worker to copy a source chunk into its slot.
type job struct {
	src  repo.ChunkID
	hint []repo.ChunkID // the target IDs a reference point gives; nil: unknown
	out  *slot
}

// queued is an index entry waiting for its chunk's copy.
type queued struct {
	n   uint64
	out *slot
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

// disk copies the chunks of one disk's index (source IDs, spilled in src)
// that the target lacks, Options.Workers at a time, and returns the index
// with target IDs in the target chunk size, built as the copies finish
// (in a temporary file past a few MiB). Memory does not grow with the
// disk: window entries in flight, recentChunks remembered.
func (c *copier) disk(ctx context.Context, src *repo.IndexEncoder, hints *hinter, s *sampler) (*repo.IndexEncoder, error) {
	size, scs := src.Geometry()
	tcs := c.targetChunkSize(scs)
	k := scs / tcs
	tix, err := repo.NewIndexEncoder(size, tcs, repo.EncoderOptions{})
	if err != nil {
		return nil, err
	}
	jobs := make(chan job)
	order := make(chan queued, window)
	g, gctx := errgroup.WithContext(ctx)
	for range c.o.Workers {
		g.Go(func() error {
			w := c.newWorker(s, tcs, k)
			for j := range jobs {
				ids, err := w.chunk(gctx, j.src, j.hint)
				if err != nil {
					return err
				}
				j.out.ids = ids
				close(j.out.done)
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(jobs)
		defer close(order)
		return c.dispatch(gctx, src.Entries(), hints, jobs, order)
	})
	g.Go(func() error {
		for q := range order {
			select {
			case <-q.out.done:
			case <-gctx.Done():
				return gctx.Err()
			}
			for j, id := range q.out.ids {
				if id == (repo.ChunkID{}) {
					continue // an all-zero piece: no entry
				}
				if err := tix.Add(q.n*uint64(k)+uint64(j), id); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		_ = tix.Close()
		return nil, err
	}
	return tix, nil
}

// dispatch reads a disk's source entries in order, hands each chunk not
// seen recently to a worker and queues every entry for the index.
func (c *copier) dispatch(ctx context.Context, entries *repo.IndexEntryReader, hints *hinter, jobs chan<- job, order chan<- queued) error {
	recent := newRecent(recentChunks)
	for {
		e, err := entries.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		out, ok := recent.get(e.ID)
		if !ok {
			hint, err := hints.at(e)
			if err != nil {
				return err
			}
			out = &slot{done: make(chan struct{})}
			recent.put(e.ID, out)
			select {
			case jobs <- job{src: e.ID, hint: hint, out: out}:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case order <- queued{n: e.N, out: out}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// recent maps the last few source chunks seen to their copies (first in,
// first out), so a chunk repeated nearby is copied once.
type recent struct {
	m    map[repo.ChunkID]*slot
	ring []repo.ChunkID
	next int
}

func newRecent(n int) *recent {
	return &recent{m: make(map[repo.ChunkID]*slot, n), ring: make([]repo.ChunkID, 0, n)}
}

func (r *recent) get(id repo.ChunkID) (*slot, bool) {
	s, ok := r.m[id]
	return s, ok
}

func (r *recent) put(id repo.ChunkID, s *slot) {
	if len(r.ring) < cap(r.ring) {
		r.ring = append(r.ring, id)
	} else {
		delete(r.m, r.ring[r.next])
		r.ring[r.next] = id
		r.next = (r.next + 1) % len(r.ring)
	}
	r.m[id] = s
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
