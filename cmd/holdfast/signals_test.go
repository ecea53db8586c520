package main

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestCancelOnSignal: the first signal cancels the command's context (exit
// 130 through exitCode); a second one exits 130 at once, whatever the
// command is stuck in; after stop, signals do nothing.
func TestCancelOnSignal(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	exits := make(chan int, 1)
	ctx, stop := cancelOnSignal(context.Background(), sigs, io.Discard, func(code int) { exits <- code })
	sigs <- syscall.SIGTERM
	<-ctx.Done()
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) || exitCode(err, false) != exitInterrupted {
		t.Fatalf("cause %v: exit %d, want %d", err, exitCode(err, false), exitInterrupted)
	}
	select {
	case code := <-exits:
		t.Fatalf("exit(%d) after one signal", code)
	default:
	}
	sigs <- os.Interrupt
	select {
	case code := <-exits:
		if code != exitInterrupted {
			t.Fatalf("second signal: exit(%d), want %d", code, exitInterrupted)
		}
	case <-time.After(time.Minute):
		t.Fatal("a second signal did not exit")
	}
	stop()

	ctx, stop = cancelOnSignal(context.Background(), sigs, io.Discard, func(code int) { exits <- code })
	stop()
	sigs <- os.Interrupt
	if ctx.Err() == nil {
		t.Fatal("stop did not release the context")
	}
	if len(sigs) != 1 || len(exits) != 0 {
		t.Fatal("a signal after stop was taken")
	}
}
