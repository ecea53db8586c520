package repocopy

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"golang.org/x/sync/errgroup"
)

// verify checks a point at the target before it is committed: an index
// stored in a repository on storage reads back as written (through an
// agent, SaveIndex's confirmed hash is that check), every chunk the
// indexes name is present, and the sampled chunks open with the target's
// keys and hash to their IDs. It streams: the indexes are read back entry
// by entry, and the presence checks go through the workers.
func (c *copier) verify(ctx context.Context, m *repo.Manifest, indexes []*repo.IndexEncoder, sample []repo.ChunkID) error {
	if r, ok := c.dst.(*repo.Repository); ok {
		for i := range m.Disks {
			if err := c.readBack(ctx, r, m, i, indexes[i]); err != nil {
				return err
			}
		}
	}
	ids := make(chan repo.ChunkID, c.o.Workers)
	g, gctx := errgroup.WithContext(ctx)
	for range c.o.Workers {
		g.Go(func() error {
			for id := range ids {
				ok, err := c.touch(gctx, id)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("target: chunk %s: %w after it was stored", id, repo.ErrMissing)
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(ids)
		seen := newRecent(recentChunks) // a chunk repeated nearby is checked once
		for _, ix := range indexes {
			entries := ix.Entries()
			for {
				e, err := entries.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					return err
				}
				if _, ok := seen.get(e.ID); ok {
					continue
				}
				seen.put(e.ID, nil)
				select {
				case ids <- e.ID:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	h := c.dst.NewHasher()
	var buf []byte
	for _, id := range sample {
		err := c.r.do(ctx, "fetch back chunk", func() error {
			b, err := c.dst.GetChunk(ctx, h, id, buf)
			if err == nil {
				buf = b[:0]
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("target: fetch back chunk %s: %w", id, err)
		}
	}
	return nil
}

// readBack reads disk i's index back from the target and compares it,
// entry by entry, with the one written.
func (c *copier) readBack(ctx context.Context, r *repo.Repository, m *repo.Manifest, i int, want *repo.IndexEncoder) error {
	err := c.r.do(ctx, "read back index", func() error {
		entries := want.Entries()
		var ix repo.Index
		differ := false
		n := 0
		err := r.WalkIndex(ctx, m, i, &ix, func(got repo.IndexEntry) {
			if e, err := entries.Next(); err != nil || e != got {
				differ = true
			}
			n++
		})
		if err != nil {
			return err
		}
		if _, err := entries.Next(); differ || n != want.Count() || err != io.EOF {
			return fmt.Errorf("%w: the index of disk %d reads back different", repo.ErrCorrupt, i)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("target: read back the index of disk %d: %w", i, err)
	}
	return nil
}

// sampler keeps a uniform random sample of up to k chunk IDs
// (reservoir sampling); safe for concurrent use.
type sampler struct {
	mu   sync.Mutex
	k    int
	seen int
	ids  []repo.ChunkID
}

func newSampler(k int) *sampler { return &sampler{k: k} }

func (s *sampler) add(id repo.ChunkID) {
	if s.k <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen++
	if len(s.ids) < s.k {
		s.ids = append(s.ids, id)
	} else if j := rand.N(s.seen); j < s.k {
		s.ids[j] = id
	}
}
