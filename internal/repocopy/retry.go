package repocopy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/retry"
)

// RetryPolicy governs retries of calls that failed with a transient
// error. Zero fields mean 10 attempts, a first backoff of 200 ms and a cap
// of 15 s.
type RetryPolicy = retry.Policy

var defaultRetry = RetryPolicy{Attempts: 10, Initial: 200 * time.Millisecond, Max: 15 * time.Second}

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
		if serr := r.clock.Sleep(ctx, r.p.Backoff(attempt)); serr != nil {
			return serr
		}
	}
}
