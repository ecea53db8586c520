package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

// errSignalled is the cancel cause of a command stopped by SIGINT or
// SIGTERM; it wraps context.Canceled, so it maps to exit 130.
type errSignalled struct{ sig os.Signal }

func (e errSignalled) Error() string { return fmt.Sprintf("%v", e.sig) }
func (e errSignalled) Unwrap() error { return context.Canceled }

// cancelOnSignal returns a context the first signal on sigs cancels: the
// command stops, cleans up (releases snapshots, locks, partial targets) and
// returns, and main exits 130. A second signal calls exit(130) at once, so
// nothing a stuck command waits for can keep it alive. stop ends the
// watching; call it when the command has returned.
func cancelOnSignal(parent context.Context, sigs <-chan os.Signal, stderr io.Writer, exit func(code int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		select {
		case s := <-sigs:
			cancel(errSignalled{s})
			fmt.Fprintf(stderr, "\nholdfast: %v: stopping (signal again to quit at once)\n", s)
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			fmt.Fprintf(stderr, "\nholdfast: %v again: quitting\n", s)
			exit(exitInterrupted)
		case <-done:
		}
	}()
	return ctx, func() {
		close(done)
		<-ended
		cancel(nil)
	}
}
