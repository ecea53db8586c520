package throttle

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// Burst limits for buckets created with burst <= 0 (see DefaultBurst).
const (
	minAutoBurst = 16 << 10
	maxAutoBurst = 4 << 20
)

// DefaultBurst is the burst used when a Bucket is created with burst <= 0:
// a sixteenth of a second's worth of bytes, clamped to [16 KiB, 4 MiB].
func DefaultBurst(rate int64) int64 {
	return min(max(rate/16, minAutoBurst), maxAutoBurst)
}

// Bucket is a token bucket holding up to burst bytes and refilled at rate
// bytes per second. A rate <= 0 means unlimited. It is safe for concurrent
// use; waiters are served in the order they reserve, one burst-sized piece
// at a time, so concurrent waiters share the rate.
type Bucket struct {
	clock     clock.Clock
	mu        sync.Mutex
	rate      float64 // bytes per second; <= 0 is unlimited
	burst     int64
	autoBurst bool // burst follows the rate (DefaultBurst)
	tokens    float64
	last      time.Time // time tokens was last brought up to date
}

// NewBucket returns a full bucket. burst <= 0 selects DefaultBurst(rate),
// re-derived whenever the rate changes; a nil clock means the real one.
func NewBucket(rate, burst int64, clk clock.Clock) *Bucket {
	b := &Bucket{clock: clock.Or(clk), autoBurst: burst <= 0, burst: burst}
	b.last = b.clock.Now()
	b.setRateLocked(rate)
	b.tokens = float64(b.burst)
	return b
}

// Rate returns the current rate in bytes per second (0 = unlimited).
func (b *Bucket) Rate() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(int64(b.rate), 0)
}

// Burst returns the current burst size in bytes.
func (b *Bucket) Burst() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.burst
}

// SetRate changes the rate at runtime; rate <= 0 makes the bucket unlimited.
// Tokens earned so far are accounted at the old rate.
func (b *Bucket) SetRate(rate int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	wasUnlimited := b.rate <= 0
	b.advance(now)
	b.setRateLocked(rate)
	if wasUnlimited {
		b.tokens = float64(b.burst)
	}
	b.tokens = min(b.tokens, float64(b.burst))
}

func (b *Bucket) setRateLocked(rate int64) {
	b.rate = float64(max(rate, 0))
	if b.autoBurst {
		b.burst = DefaultBurst(rate)
	}
}

// advance credits the tokens earned since b.last. Callers hold b.mu.
func (b *Bucket) advance(now time.Time) {
	if !now.After(b.last) {
		return
	}
	if b.rate > 0 {
		b.tokens += b.rate * now.Sub(b.last).Seconds()
		b.tokens = min(b.tokens, float64(b.burst))
	}
	b.last = now
}

// reserve takes n tokens (going into debt if needed) and returns how long
// the caller must wait before using them.
func (b *Bucket) reserve(n int64) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate <= 0 {
		return 0
	}
	b.advance(b.clock.Now())
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(math.Ceil(-b.tokens / b.rate * float64(time.Second)))
}

// piece returns the size of the next piece of a wait for rest bytes, or
// unlimited if no waiting is needed at all.
func (b *Bucket) piece(rest int64) (n int64, unlimited bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return min(rest, b.burst), b.rate <= 0
}

// refund returns n tokens of an abandoned reservation.
func (b *Bucket) refund(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.tokens+float64(n), float64(b.burst))
}

// WaitN blocks until n bytes may be transferred or ctx ends. Large n is
// split into burst-sized pieces so other waiters are interleaved. On
// cancellation the piece being waited for is refunded.
func (b *Bucket) WaitN(ctx context.Context, n int) error {
	for rest := int64(n); rest > 0; {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		piece, unlimited := b.piece(rest)
		if unlimited {
			return nil
		}
		if d := b.reserve(piece); d > 0 {
			if err := b.clock.Sleep(ctx, d); err != nil {
				b.refund(piece)
				return err
			}
		}
		rest -= piece
	}
	return nil
}

// Chunk returns the largest piece a caller should transfer at once: the
// burst, or maxN when the bucket is unlimited (or b is nil).
func (b *Bucket) Chunk(maxN int) int {
	if b == nil {
		return maxN
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate <= 0 || b.burst >= int64(maxN) {
		return maxN
	}
	return int(b.burst)
}
