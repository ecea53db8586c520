package mover

import (
	"context"
	"net/http"
	"sync"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// prefetchParallel is how many "has" batches Prefetch keeps in flight.
const prefetchParallel = 4

// hasCache remembers, for one session, the chunks the agent reported
// stored. Each was touched by that report, after the session's shared lock
// was taken, so GC keeps it for the rest of the session: a later
// TouchChunk for it needs no round trip. Misses wait in a queue that one
// flusher sends as a single "has" request per MaxHasIDs, so concurrent
// workers share round trips.
type hasCache struct {
	mu      sync.Mutex
	present map[repo.ChunkID]struct{}
	queue   []*hasWait
	running bool // a flusher is draining the queue
}

type hasWait struct {
	id   repo.ChunkID
	ok   bool
	err  error
	done chan struct{}
}

func newHasCache() *hasCache { return &hasCache{present: make(map[repo.ChunkID]struct{})} }

func (h *hasCache) add(id repo.ChunkID) {
	h.mu.Lock()
	h.present[id] = struct{}{}
	h.mu.Unlock()
}

// unknown returns the IDs not known to be present, without duplicates.
func (h *hasCache) unknown(ids []repo.ChunkID) []repo.ChunkID {
	h.mu.Lock()
	defer h.mu.Unlock()
	seen := make(map[repo.ChunkID]struct{})
	var out []repo.ChunkID
	for _, id := range ids {
		_, known := h.present[id]
		_, dup := seen[id]
		if !known && !dup {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// take removes up to n waiters from the queue; with none left it marks
// the flusher stopped and returns nil.
func (h *hasCache) take(n int) []*hasWait {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.queue) == 0 {
		h.running = false
		return nil
	}
	n = min(n, len(h.queue))
	batch := h.queue[:n:n]
	h.queue = append([]*hasWait(nil), h.queue[n:]...)
	return batch
}

// TouchChunk reports whether the chunk is stored and protects it from a
// concurrent GC: from the session's cache, else through a batched "has".
func (c *Client) TouchChunk(ctx context.Context, id repo.ChunkID) (bool, error) {
	s, err := c.session()
	if err != nil {
		return false, err
	}
	h := s.cache
	h.mu.Lock()
	if _, ok := h.present[id]; ok {
		h.mu.Unlock()
		c.stats.hasHits.Add(1)
		return true, nil
	}
	w := &hasWait{id: id, done: make(chan struct{})}
	h.queue = append(h.queue, w)
	start := !h.running
	h.running = true
	h.mu.Unlock()
	if start {
		go c.flushHas(s)
	}
	select {
	case <-w.done:
		return w.ok, w.err
	case <-ctx.Done():
		return false, context.Cause(ctx)
	}
}

// flushHas sends the queued misses until the queue is empty. It runs in
// the session's context (cancelled when the session ends); waiters stop
// waiting on their own context.
func (c *Client) flushHas(s *clientSession) {
	for {
		batch := s.cache.take(MaxHasIDs)
		if batch == nil {
			return
		}
		ids := make([]repo.ChunkID, len(batch))
		for i, w := range batch {
			ids[i] = w.id
		}
		present, err := c.hasRequest(s.ctx, s, ids)
		for i, w := range batch {
			w.err = err
			if err == nil {
				w.ok = present[i]
			}
			close(w.done)
		}
	}
}

// Prefetch asks the agent, in batches, which of the chunks are stored;
// those are touched and remembered for the session, so TouchChunk answers
// them without a round trip. It needs a session (see Lock).
func (c *Client) Prefetch(ctx context.Context, ids []repo.ChunkID) error {
	s, err := c.session()
	if err != nil {
		return err
	}
	todo := s.cache.unknown(ids)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, prefetchParallel)
	var wg sync.WaitGroup
	for len(todo) > 0 && ctx.Err() == nil {
		batch := todo[:min(MaxHasIDs, len(todo))]
		todo = todo[len(batch):]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := c.hasRequest(ctx, s, batch); err != nil {
				cancel(err)
			}
		}()
	}
	wg.Wait()
	return context.Cause(ctx)
}

// hasRequest sends one "has" request and caches the present IDs.
func (c *Client) hasRequest(ctx context.Context, s *clientSession, ids []repo.ChunkID) ([]bool, error) {
	c.stats.hasRequests.Add(1)
	c.stats.hasIDs.Add(int64(len(ids)))
	b, err := c.do(ctx, call{method: http.MethodPost, path: s.path("has"), body: encodeIDs(ids),
		ctype: ctypeBinary, limit: MaxHasIDs / 8})
	if err != nil {
		return nil, err
	}
	present, err := decodeBitmap(b, len(ids))
	if err != nil {
		return nil, err
	}
	s.cache.mu.Lock()
	for i, p := range present {
		if p {
			s.cache.present[ids[i]] = struct{}{}
		}
	}
	s.cache.mu.Unlock()
	return present, nil
}

// hasOne asks about one chunk (before resending an interrupted upload).
func (c *Client) hasOne(ctx context.Context, s *clientSession, id repo.ChunkID) (bool, error) {
	p, err := c.hasRequest(ctx, s, []repo.ChunkID{id})
	if err != nil {
		return false, err
	}
	return p[0], nil
}
