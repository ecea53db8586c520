package pipeline

import (
	"context"
	"sync"
	"time"
)

// Limiter paces byte transfers to a rate (bytes per second), shared by all
// goroutines that call Wait. It lets a burst of one call through at once and
// then spaces calls so the long-run average never exceeds the rate.
type Limiter struct {
	rate float64
	now  func() time.Time
	mu   sync.Mutex
	next time.Time // when the next transfer may start
}

// NewLimiter returns a limiter for rate bytes per second; rate <= 0 means
// unlimited (a nil *Limiter is also unlimited).
func NewLimiter(rate int64) *Limiter {
	if rate <= 0 {
		return nil
	}
	return &Limiter{rate: float64(rate), now: time.Now}
}

// Wait blocks until n bytes may be transferred or ctx ends.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	now := l.now()
	if l.next.Before(now) {
		l.next = now
	}
	start := l.next
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	l.mu.Unlock()
	d := start.Sub(now)
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
