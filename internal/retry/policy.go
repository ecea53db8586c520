package retry

import (
	"math/rand/v2"
	"time"
)

// Policy governs retries of calls that failed with a transient error.
// Zero fields take the caller's defaults (Or).
type Policy struct {
	Attempts int           // total attempts per call
	Initial  time.Duration // first backoff
	Max      time.Duration // backoff cap
}

// Or fills p's zero (or negative) fields from def.
func (p Policy) Or(def Policy) Policy {
	if p.Attempts <= 0 {
		p.Attempts = def.Attempts
	}
	if p.Initial <= 0 {
		p.Initial = def.Initial
	}
	if p.Max <= 0 {
		p.Max = def.Max
	}
	return p
}

// Backoff is the wait before retry n (1-based): Initial doubled n-1
// times, capped at Max, with ±25 % jitter.
func (p Policy) Backoff(n int) time.Duration {
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	return d - d/4 + rand.N(d/2+1)
}
