package scheduler

import "time"

// Clock tells the time. The scheduler reads it only to stamp queue entries
// and attempt records; it never sleeps on it.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now returns f().
func (f ClockFunc) Now() time.Time { return f() }

// SystemClock is the wall clock.
var SystemClock Clock = ClockFunc(time.Now)
