package clock

import (
	"context"
	"time"
)

// Clock tells the time, sleeps and makes timers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Since returns the time elapsed since t (Now().Sub(t)).
	Since(t time.Time) time.Duration
	// Sleep blocks for d or until ctx ends, returning ctx's cause then
	// (also when d <= 0 and ctx has ended).
	Sleep(ctx context.Context, d time.Duration) error
	// NewTimer returns a timer whose channel receives the time once d has
	// passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer (see time.Timer).
type Timer interface {
	// C is the channel the timer fires on.
	C() <-chan time.Time
	// Stop stops the timer; it reports whether that prevented it firing.
	Stop() bool
}

// Real returns the wall clock.
func Real() Clock { return realClock{} }

// Or returns c, or the wall clock when c is nil: options structs take a
// Clock whose zero value means the real one.
func Or(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}

// Deadline returns the wall-clock time d from now: for net.Conn and
// os.File deadlines, which the kernel checks against the real clock.
func Deadline(d time.Duration) time.Time { return time.Now().Add(d) }

type realClock struct{}

func (realClock) Now() time.Time                  { return time.Now() }
func (realClock) Since(t time.Time) time.Duration { return time.Since(t) }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return context.Cause(ctx)
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

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time { return r.t.C }
func (r realTimer) Stop() bool          { return r.t.Stop() }
