package throttle

import (
	"context"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// fakeClock is clock.Fake (Sleep returns at once, moving the clock) that
// counts sleeps; onSleep, if set, runs before each sleep.
type fakeClock struct {
	*clock.Fake
	mu      sync.Mutex
	sleeps  int
	onSleep func(n int)
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{Fake: clock.NewFake(t)} }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps++
	n, hook := c.sleeps, c.onSleep
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	return c.Fake.Sleep(ctx, d)
}
