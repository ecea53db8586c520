package throttle

import (
	"context"
	"sync"
	"time"
)

// fakeClock is virtual time: Sleep returns at once, moving the clock to the
// sleeper's deadline if that is later than now. onSleep, if set, runs
// (without the lock) before each sleep.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	sleeps  int
	onSleep func(n int)
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	deadline := c.now.Add(d)
	c.sleeps++
	n, hook := c.sleeps, c.onSleep
	c.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	if err := context.Cause(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	if deadline.After(c.now) {
		c.now = deadline
	}
	c.mu.Unlock()
	return nil
}
