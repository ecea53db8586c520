package restorefs

import (
	"context"
	"fmt"
	"sync"
)

// StreamCacheBytes is the cache bound of a Disk that is streamed (Stream,
// ReadChunk) rather than served: room for the prefetch window and for
// recently fetched chunks that occur again further on.
const StreamCacheBytes = 32 << 20

// StreamOptions are the Options of a Disk opened to be streamed (a full
// restore, a rollback): a StreamCacheBytes cache and no read-ahead, which
// Stream does itself.
func StreamOptions() Options { return Options{CacheBytes: StreamCacheBytes, ReadAhead: -1} }

// slot is one data chunk of a stream: its pinned cache entry (p.e), or,
// when the cache had no room, a private fetch into data/err, which close
// done.
type slot struct {
	p    pending
	data []byte
	err  error
	done chan struct{}
}

// Stream hands every data chunk of the disk, in disk order, to fn, called
// by one goroutine; zero chunks are skipped (fn sees the gaps in n). Up to
// workers goroutines fetch ahead of fn, at most 2 × workers chunks (fewer
// if the cache holds fewer), through the Disk's cache: a chunk that occurs
// again while still cached is not fetched again. data is only valid until
// fn returns. The first error — fn's, or a fetch's naming the chunk —
// stops the stream and is returned.
func (d *Disk) Stream(ctx context.Context, workers int, fn func(n uint64, data []byte) error) error {
	if d.closed.Load() {
		return ErrClosed
	}
	workers = max(workers, 1)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The window stays pinned in the cache, with room for one more chunk.
	window := max(min(2*workers, int(d.cache.limit/d.cs)-1), 1)
	tokens := make(chan struct{}, window)
	jobs := make(chan *slot, window)
	order := make(chan *slot, window)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for s := range jobs {
				d.fill(ctx, s)
			}
		})
	}
	go d.dispatch(ctx, tokens, jobs, order)
	var err error
	for s := range order {
		data, ferr := d.slotData(ctx, s)
		if err == nil {
			if err = ferr; err == nil {
				err = fn(s.p.n, data)
			}
			if err != nil {
				cancel(err)
			}
		}
		if s.p.e != nil {
			d.cache.release(s.p.e)
		}
		<-tokens
	}
	wg.Wait()
	if err == nil && ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return err
}

// dispatch walks the index in order: each data chunk takes a window token
// and is pinned in the cache (or, without room, gets a private fetch); it
// goes to the workers when it must be fetched and to the writer in order.
func (d *Disk) dispatch(ctx context.Context, tokens chan struct{}, jobs, order chan<- *slot) {
	defer close(order)
	defer close(jobs)
	for _, ie := range d.ix.Entries {
		select {
		case tokens <- struct{}{}:
		case <-ctx.Done():
			return
		}
		s := &slot{p: pending{n: ie.N, id: ie.ID, data: true}}
		e, load, _ := d.cache.acquire(ie.N, ie.ID, false)
		s.p.e = e
		switch {
		case e == nil:
			s.done = make(chan struct{})
			fallthrough
		case load:
			d.misses.Add(1)
			jobs <- s
		default: // cached, or being loaded for an earlier slot or a reader
			d.hits.Add(1)
		}
		order <- s
	}
}

// fill fetches s's chunk into its new cache entry or its private buffer.
func (d *Disk) fill(ctx context.Context, s *slot) {
	switch {
	case s.p.e == nil:
		s.data, s.err = d.fetch(ctx, s.p.n, s.p.id, make([]byte, d.cs))
		close(s.done)
	case ctx.Err() != nil: // stopping: do not fetch what nobody will write
		d.cache.finish(s.p.e, nil, d.chunkError(s.p.n, s.p.id, context.Cause(ctx)))
	default:
		d.load(ctx, s.p.e)
	}
}

// slotData waits for s's chunk.
func (d *Disk) slotData(ctx context.Context, s *slot) ([]byte, error) {
	if s.p.e == nil {
		<-s.done
		return s.data, s.err
	}
	return d.chunkData(ctx, &s.p)
}

// ReadChunk reads data chunk n into dst (at least the chunk's length)
// through the cache, without read-ahead: for callers that pick the
// chunks they need, such as a rollback. It returns dst[:ChunkLen(n)]; a
// zero chunk reads as zeros.
func (d *Disk) ReadChunk(ctx context.Context, n uint64, dst []byte) ([]byte, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	if n >= d.ix.Chunks() {
		return nil, fmt.Errorf("point %s disk %d: chunk %d beyond the disk's %d chunks", d.point, d.disk, n, d.ix.Chunks())
	}
	p := dst[:d.ix.ChunkLen(n)]
	if err := d.readChunks(ctx, p, int64(n)*d.cs, n, n); err != nil {
		return nil, err
	}
	return p, nil
}
