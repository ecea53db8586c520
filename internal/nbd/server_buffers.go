package nbd

import (
	"context"
	"math/bits"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

// ServerStats are a Server's buffer counters.
type ServerStats struct {
	// BufferedBytes are the bytes of request payloads and read replies
	// reserved now, over all connections.
	BufferedBytes int64
	// PeakBufferedBytes is the most BufferedBytes has been.
	PeakBufferedBytes int64
}

// Stats returns the server's buffer counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{BufferedBytes: s.buf.held.Load(), PeakBufferedBytes: s.buf.peak.Load()}
}

// bufferBudget bounds the bytes of request and reply buffers held at once
// over a whole server (ServerOptions.MaxTotalBufferedBytes) and counts them.
// Each connection has its own smaller bound too (transmission.budget); a
// request reserves its bytes in both, whole (a weighted semaphore, so two
// connections cannot each hold half of what both need), before its
// payload is read or its reply allocated.
type bufferBudget struct {
	sem  *semaphore.Weighted
	held atomic.Int64
	peak atomic.Int64
}

func newBufferBudget(n int64) *bufferBudget {
	return &bufferBudget{sem: semaphore.NewWeighted(n)}
}

func (b *bufferBudget) acquire(ctx context.Context, n int64) error {
	if err := b.sem.Acquire(ctx, n); err != nil {
		return err
	}
	h := b.held.Add(n)
	for {
		p := b.peak.Load()
		if h <= p || b.peak.CompareAndSwap(p, h) {
			return nil
		}
	}
}

func (b *bufferBudget) release(n int64) {
	b.held.Add(-n)
	b.sem.Release(n)
}

// Buffers of request payloads and read replies come from pools by power of
// two size, from minPooled to MaxRequestSize, and go back once the payload
// is written to the export or the reply sent, so a busy server reuses the
// same memory instead of allocating per request.
const minPooledShift = 16 // 64 KiB

// bufferPools are the pools, by size class: 64 KiB, 128 KiB, … 32 MiB.
type bufferPools [16]sync.Pool

// poolIndex returns the pool for n bytes, or -1 when n exceeds
// MaxRequestSize.
func poolIndex(n int) int {
	if n > MaxRequestSize {
		return -1
	}
	if n <= 1<<minPooledShift {
		return 0
	}
	return bits.Len(uint(n-1)) - minPooledShift
}

// get returns a buffer of n bytes.
func (p *bufferPools) get(n int) []byte {
	i := poolIndex(n)
	if i < 0 {
		return make([]byte, n)
	}
	if b, ok := p[i].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, 1<<(i+minPooledShift))
}

// put gives back a buffer from get; others are left to the GC.
func (p *bufferPools) put(b []byte) {
	c := cap(b)
	i := poolIndex(c)
	if c == 0 || i < 0 || c != 1<<(i+minPooledShift) {
		return
	}
	b = b[:0]
	p[i].Put(&b)
}
