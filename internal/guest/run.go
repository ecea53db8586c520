package guest

import (
	"context"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// Run runs s in the guest t over SSH or, when there is no network path,
// through the guest agent (see the package documentation for the rules).
// timeout bounds the script's execution (0: only ctx bounds it); when it
// expires the script's processes are killed and the error wraps
// ErrTimeout. A script that fails is a *ScriptError. The Result is filled
// as far as the run got, also on error.
func Run(ctx context.Context, t Target, s Script, timeout time.Duration) (Result, error) {
	clk := clock.Real() // the script runs in real time (its timeout is a context deadline)
	start := clk.Now()
	res, err := run(ctx, t, s, timeout)
	res.Duration = clk.Since(start)
	return res, err
}

func run(ctx context.Context, t Target, s Script, timeout time.Duration) (Result, error) {
	var res Result
	if t.SSH == nil && t.AgentSocket == "" {
		return res, fmt.Errorf("guest script %q: %w", s.Name, ErrNoPath)
	}
	var sshErr error
	if t.SSH != nil {
		c, hostKey, err := dialSSH(ctx, t.SSH)
		res.HostKey = hostKey
		if err == nil {
			defer c.Close()
			res.Via = ViaSSH
			return res, withTimeout(ctx, timeout, func(ctx context.Context) error {
				return runSSH(ctx, c, s, &res, timeout)
			})
		}
		if !isNoPath(err) || ctx.Err() != nil {
			return res, err
		}
		sshErr = err
		if t.AgentSocket == "" {
			return res, fmt.Errorf("guest script %q: %w: %v; no guest agent socket configured", s.Name, ErrUnreachable, err)
		}
		res.Fallback = err.Error()
	} else {
		res.Fallback = "no SSH target configured"
	}

	a, err := dialAgent(ctx, t.AgentSocket)
	if err != nil {
		if sshErr == nil {
			return res, fmt.Errorf("guest script %q: %w: no SSH target configured; %v", s.Name, ErrUnreachable, err)
		}
		return res, fmt.Errorf("guest script %q: %w: %v; %v", s.Name, ErrUnreachable, sshErr, err)
	}
	defer a.Close()
	res.Via = ViaAgent
	return res, withTimeout(ctx, timeout, func(ctx context.Context) error {
		return runAgent(ctx, a, s, &res, timeout)
	})
}

// withTimeout runs f with ctx limited to timeout (if positive); the ctx's
// cause is then ErrTimeout, which tells it from a cancellation.
func withTimeout(ctx context.Context, timeout time.Duration, f func(context.Context) error) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, timeout, ErrTimeout)
		defer cancel()
	}
	return f(ctx)
}
