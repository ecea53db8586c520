package repocopy

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"golang.org/x/sync/errgroup"
)

// verify checks a point at the target before it is committed: an index
// stored in a repository on storage reads back as written (through an
// agent, SaveIndex's confirmed hash is that check), every chunk the
// indexes name is present, and the sampled chunks open with the target's
// keys and hash to their IDs.
func (c *copier) verify(ctx context.Context, m *repo.Manifest, indexes []*repo.Index, sample []repo.ChunkID) error {
	if r, ok := c.dst.(*repo.Repository); ok {
		for i := range m.Disks {
			var back *repo.Index
			err := c.r.do(ctx, "read back index", func() (err error) {
				back, err = r.LoadIndex(ctx, m, i)
				return err
			})
			if err != nil {
				return fmt.Errorf("target: read back the index of disk %d: %w", i, err)
			}
			if !slices.Equal(back.Entries, indexes[i].Entries) {
				return fmt.Errorf("target: %w: the index of disk %d reads back different", repo.ErrCorrupt, i)
			}
		}
	}
	var ids []repo.ChunkID
	for _, ix := range indexes {
		for _, e := range ix.Entries {
			ids = append(ids, e.ID)
		}
	}
	slices.SortFunc(ids, func(a, b repo.ChunkID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	g, gctx := errgroup.WithContext(ctx)
	for w := range c.o.Workers {
		g.Go(func() error {
			for k := w; k < len(ids); k += c.o.Workers {
				ok, err := c.touch(gctx, ids[k])
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("target: chunk %s: %w after it was stored", ids[k], repo.ErrMissing)
				}
			}
			return nil
		})
	}
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
