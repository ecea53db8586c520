package pipeline

import (
	"context"
	"testing"
	"time"
)

func TestLimiterSchedule(t *testing.T) {
	base := time.Unix(1000, 0)
	l := NewLimiter(1000) // bytes per second
	l.now = func() time.Time { return base }
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		n        int
		mustWait bool
		next     time.Duration // schedule after the call, from base
	}{
		{500, false, 500 * time.Millisecond}, // first call passes at once
		{1000, true, 1500 * time.Millisecond},
		{100, true, 1600 * time.Millisecond},
	}
	for i, tc := range tests {
		err := l.Wait(cancelled, tc.n)
		if waited := err != nil; waited != tc.mustWait {
			t.Fatalf("call %d: had to wait = %v, want %v", i, waited, tc.mustWait)
		}
		if got := l.next.Sub(base); got != tc.next {
			t.Fatalf("call %d: next slot at %v, want %v", i, got, tc.next)
		}
	}
	if NewLimiter(0) != nil {
		t.Fatal("rate 0 must mean unlimited")
	}
	var unlimited *Limiter
	if err := unlimited.Wait(context.Background(), 1<<30); err != nil {
		t.Fatal(err)
	}
}
