package throttle

import (
	"context"
	"time"
)

// Clock is the time source of a Bucket and a Shaper. Tests inject a fake
// clock so that pacing logic can be verified without real sleeping.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep blocks for d or until ctx ends, returning ctx's cause then.
	Sleep(ctx context.Context, d time.Duration) error
}

// SystemClock is the real wall clock.
var SystemClock Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) error {
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
