package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)

func TestFakeSleepMovesTime(t *testing.T) {
	f := NewFake(t0)
	for _, c := range []struct {
		d    time.Duration
		want time.Time
	}{{time.Second, t0.Add(time.Second)}, {0, t0.Add(time.Second)}, {-time.Hour, t0.Add(time.Second)}, {time.Minute, t0.Add(61 * time.Second)}} {
		if err := f.Sleep(context.Background(), c.d); err != nil {
			t.Fatal(err)
		}
		if got := f.Now(); !got.Equal(c.want) {
			t.Errorf("after Sleep(%v): %v, want %v", c.d, got, c.want)
		}
	}
	if got := f.Since(t0); got != 61*time.Second {
		t.Errorf("Since: %v", got)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("stop")
	cancel(cause)
	for _, c := range []Clock{f, Real()} {
		if err := c.Sleep(ctx, time.Hour); !errors.Is(err, cause) {
			t.Errorf("%T: Sleep on an ended context: %v, want its cause", c, err)
		}
	}
	if !f.Now().Equal(t0.Add(61 * time.Second)) {
		t.Error("a cancelled Sleep moved the clock")
	}
}

func TestFakeTimers(t *testing.T) {
	f := NewFake(t0)
	a, b, stopped := f.NewTimer(time.Second), f.NewTimer(time.Minute), f.NewTimer(time.Second)
	if !stopped.Stop() || stopped.Stop() {
		t.Error("Stop of a waiting timer, then again")
	}
	if n := f.Timers(); n != 2 {
		t.Fatalf("%d timers wait, want 2", n)
	}
	f.Advance(time.Second)
	select {
	case got := <-a.C():
		if !got.Equal(t0.Add(time.Second)) {
			t.Errorf("fired at %v", got)
		}
	default:
		t.Fatal("a due timer did not fire")
	}
	select {
	case <-b.C():
		t.Fatal("a timer fired early")
	case <-stopped.C():
		t.Fatal("a stopped timer fired")
	default:
	}
	if a.Stop() {
		t.Error("Stop of a fired timer reported true")
	}
	_ = f.Sleep(context.Background(), time.Hour)
	<-b.C()
	if n := f.Timers(); n != 0 {
		t.Errorf("%d timers left", n)
	}
	f.Set(t0)
	if !f.Now().Equal(t0) {
		t.Error("Set backwards")
	}
	now := f.NewTimer(0)
	<-now.C()
}

func TestOr(t *testing.T) {
	if _, ok := Or(nil).(realClock); !ok {
		t.Error("Or(nil) is not the real clock")
	}
	f := NewFake(t0)
	if Or(f) != Clock(f) {
		t.Error("Or(f) is not f")
	}
	r := Real()
	tm := r.NewTimer(time.Hour)
	if !tm.Stop() {
		t.Error("real timer Stop")
	}
	if d := time.Until(Deadline(time.Hour)); d <= 0 || d > time.Hour {
		t.Errorf("Deadline(1h) is %v away", d)
	}
	if r.Since(r.Now().Add(-time.Hour)) < time.Hour {
		t.Error("real Since")
	}
}
