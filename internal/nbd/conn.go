package nbd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// readBounded reads exactly n bytes, growing the buffer only as data
// arrives, so a peer announcing a large length cannot make us allocate it
// up front.
func readBounded(r io.Reader, n int) ([]byte, error) {
	if n <= 64<<10 {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	var buf bytes.Buffer
	got, err := io.CopyN(&buf, r, int64(n))
	if err != nil {
		if errors.Is(err, io.EOF) && got > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// withDeadline runs fn with conn's deadline following ctx: the ctx deadline
// applies to every read and write, and cancelling ctx unblocks them.
func withDeadline(ctx context.Context, conn net.Conn, fn func() error) error {
	return withDeadlineSetter(ctx, conn.SetDeadline, fn)
}

// withDeadlineSetter is withDeadline for one direction (SetReadDeadline or
// SetWriteDeadline).
func withDeadlineSetter(ctx context.Context, set func(time.Time) error, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = set(dl)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = set(time.Unix(1, 0))
		close(fired)
	})
	err := fn()
	if !stop() {
		<-fired
	}
	_ = set(time.Time{})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
	}
	return err
}

// closedErr turns a read error on a connection into a descriptive error.
func closedErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("nbd: %s: connection closed by peer: %w", what, err)
	}
	return fmt.Errorf("nbd: %s: %w", what, err)
}
