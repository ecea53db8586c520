package repocopy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// RetryPolicy governs retries of calls that failed with a transient error.
type RetryPolicy struct {
	Attempts int           // total attempts per call; 0 means 10
	Initial  time.Duration // first backoff; 0 means 200 ms
	Max      time.Duration // backoff cap; 0 means 15 s
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 10
	}
	if p.Initial <= 0 {
		p.Initial = 200 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 15 * time.Second
	}
	return p
}

// backoff is the wait before retry n (1-based): exponential, capped, with
// ±25 % jitter.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	return d - d/4 + rand.N(d/2+1)
}

// Transient reports whether err is a network failure that another attempt
// may not meet: a connection reset, refused or aborted, a broken pipe, a
// body cut short, a timeout. Damage, a missing file, a wrong password and
// a cancelled copy are not.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ETIMEDOUT),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return true
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// retrier runs calls with the policy, counting retries.
type retrier struct {
	p     RetryPolicy
	clock clock.Clock
	log   *slog.Logger
	count func()
}

// do runs f until it succeeds, fails for good, or the attempts are spent.
func (r *retrier) do(ctx context.Context, what string, f func() error) error {
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || attempt >= r.p.Attempts || ctx.Err() != nil || !Transient(err) {
			return err
		}
		r.count()
		r.log.Debug("copy: retrying", "call", what, "attempt", attempt, "err", err)
		if serr := r.clock.Sleep(ctx, r.p.backoff(attempt)); serr != nil {
			return serr
		}
	}
}
