package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// testBar is a terminal-style (auto-refreshing) bar of total bytes on w.
func testBar(w io.Writer, total int64, c clock.Clock) *barProgress {
	p := mpb.New(mpb.WithOutput(w), mpb.WithAutoRefresh(), mpb.WithRefreshRate(10*time.Millisecond))
	return &barProgress{p: p, bar: p.AddBar(total), clock: c}
}

// doneWithin calls Done(err) and fails the test unless it returns within
// a minute (it used to wait for ever for a bar stopped short of its total).
func doneWithin(t *testing.T, b *barProgress, err error) {
	t.Helper()
	returned := make(chan struct{})
	go func() {
		b.Done(err)
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(time.Minute):
		t.Fatalf("Done(%v) of a bar at %d did not return", err, b.bar.Current())
	}
}

// TestBarDoneEndsEveryBar: a bar stopped short of its total (interrupted,
// failed, or a success that skipped bytes) and a bar without a total end
// by themselves, without the grace timer.
func TestBarDoneEndsEveryBar(t *testing.T) {
	never := clock.NewFake(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)) // never advanced
	for _, tc := range []struct {
		name  string
		total int64
		add   int64
		err   error
	}{
		{"interrupted", 100 << 20, 14 << 20, context.Canceled},
		{"success short of the total", 100 << 20, 14 << 20, nil},
		{"complete", 100 << 20, 100 << 20, nil},
		{"no total, success", 0, 5 << 20, nil},
		{"no total, interrupted", 0, 5 << 20, context.Canceled},
		{"nothing done", 100 << 20, 0, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBar(io.Discard, tc.total, never)
			b.Add(tc.add)
			doneWithin(t, b, tc.err)
			if got := b.bar.Aborted(); got != (tc.err != nil) {
				t.Errorf("aborted %v after Done(%v)", got, tc.err)
			}
			if tc.err == nil && !b.bar.Completed() {
				t.Errorf("not completed after Done(nil)")
			}
		})
	}
}

// blockedTerminal is a terminal whose writes never return (XOFF, a stuck
// pseudo-terminal reader) until the test ends.
type blockedTerminal struct{ release chan struct{} }

func (b blockedTerminal) Write(p []byte) (int, error) {
	<-b.release
	return len(p), nil
}

// TestBarDoneBoundedOnStuckTerminal: when the terminal takes no output,
// Done gives up after barGrace rather than hold the command.
func TestBarDoneBoundedOnStuckTerminal(t *testing.T) {
	w := blockedTerminal{release: make(chan struct{})}
	defer close(w.release)
	fake := clock.NewFake(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC))
	b := testBar(w, 100<<20, fake)
	b.Add(14 << 20)
	returned := make(chan struct{})
	go func() {
		b.Done(context.Canceled)
		close(returned)
	}()
	for fake.Timers() == 0 {
		select {
		case <-returned:
			t.Fatal("Done returned while the terminal was stuck: nothing to bound")
		case <-time.After(time.Millisecond):
		}
	}
	fake.Advance(barGrace)
	select {
	case <-returned:
	case <-time.After(time.Minute):
		t.Fatal("Done did not return after the grace period")
	}
}
