package qmp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// parseAddress turns "unix:///abs/qmp.sock", "unix:/abs/qmp.sock", a plain
// socket path, "tcp://host:port" or "tcp:host:port" into a network and an
// address for net.Dial.
func parseAddress(addr string) (network, address string, err error) {
	for _, p := range []struct{ prefix, network string }{
		{"unix://", "unix"}, {"unix:", "unix"}, {"tcp://", "tcp"}, {"tcp:", "tcp"},
	} {
		if rest, ok := strings.CutPrefix(addr, p.prefix); ok {
			if rest == "" {
				return "", "", fmt.Errorf("qmp: empty address in %q", addr)
			}
			return p.network, rest, nil
		}
	}
	if addr == "" || strings.Contains(addr, "://") {
		return "", "", fmt.Errorf("qmp: unsupported address %q (want unix://PATH, PATH or tcp://HOST:PORT)", addr)
	}
	return "unix", addr, nil
}

func dial(ctx context.Context, addr string) (net.Conn, error) {
	network, address, err := parseAddress(addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("qmp: %w", err)
	}
	return conn, nil
}

// withContext runs op, an I/O operation on a connection, under ctx: the
// deadline of ctx becomes the connection deadline set by setDeadline, and
// cancelling ctx interrupts op. The deadline is reset afterwards. A timeout
// is reported as the ctx error.
func withContext(ctx context.Context, setDeadline func(time.Time) error, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline, hasDeadline := ctx.Deadline()
	_ = setDeadline(deadline)
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = setDeadline(time.Unix(1, 0))
		close(fired)
	})
	err := op()
	if !stop() {
		<-fired // the interrupt ran (or is running): let it finish first
	}
	_ = setDeadline(time.Time{})
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		if hasDeadline {
			return context.DeadlineExceeded
		}
	}
	return err
}
