package throttle

import (
	"context"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestBucketMath(t *testing.T) {
	const MiB = 1 << 20
	tests := []struct {
		name        string
		rate, burst int64
		n           int
		want        time.Duration
	}{
		{"within burst", MiB, 64 << 10, 32 << 10, 0},
		{"exactly burst", MiB, 64 << 10, 64 << 10, 0},
		{"one MiB", MiB, 64 << 10, MiB, 937500 * time.Microsecond},
		{"ten MiB at 10MiB/s", 10 * MiB, MiB, 10 * MiB, 900 * time.Millisecond},
		{"odd sizes", 1000, 300, 10000, 9700 * time.Millisecond},
		{"unlimited", 0, 0, 100 * MiB, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock(t0)
			b := NewBucket(tt.rate, tt.burst, clk)
			if err := b.WaitN(context.Background(), tt.n); err != nil {
				t.Fatal(err)
			}
			want := tt.want
			got := clk.Now().Sub(t0)
			if d := got - want; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("took %v, want %v", got, want)
			}
		})
	}
}

func TestBucketConcurrentShare(t *testing.T) {
	const rate, workers, each = 1 << 20, 8, 256 << 10
	clk := newFakeClock(t0)
	b := NewBucket(rate, 16<<10, clk)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for sent := 0; sent < each; sent += 4 << 10 {
				if err := b.WaitN(context.Background(), 4<<10); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := clk.Now().Sub(t0).Seconds()
	got := float64(workers*each-16<<10) / elapsed
	if got < rate*0.9 || got > rate*1.1 {
		t.Errorf("aggregate %.0f B/s, want %d ±10%%", got, rate)
	}
}

func TestBucketSetRateMidStream(t *testing.T) {
	const MiB = 1 << 20
	clk := newFakeClock(t0)
	b := NewBucket(MiB, 64<<10, clk)
	// Just before the 8th sleep (after 7 pieces paid at 1 MiB/s) double
	// the rate: the outstanding debt and the rest are paid at 2 MiB/s.
	clk.onSleep = func(n int) {
		if n == 8 {
			b.SetRate(2 * MiB)
		}
	}
	if err := b.WaitN(context.Background(), 64<<10+16*64<<10); err != nil {
		t.Fatal(err)
	}
	want := 7*62500*time.Microsecond + 9*31250*time.Microsecond
	if got := clk.Now().Sub(t0); got-want > time.Millisecond || want-got > time.Millisecond {
		t.Errorf("took %v, want %v", got, want)
	}
	if b.Rate() != 2*MiB || b.Burst() != 64<<10 {
		t.Errorf("rate %d burst %d", b.Rate(), b.Burst())
	}
}

func TestBucketUnlimitedToLimited(t *testing.T) {
	clk := newFakeClock(t0)
	b := NewBucket(0, 1000, clk)
	_ = b.WaitN(context.Background(), 1e9)
	if !clk.Now().Equal(t0) {
		t.Fatal("unlimited bucket waited")
	}
	b.SetRate(1000)
	_ = b.WaitN(context.Background(), 3000)
	if got := clk.Now().Sub(t0); got != 2*time.Second {
		t.Errorf("took %v, want 2s", got)
	}
}

func TestBucketCancel(t *testing.T) {
	clk := newFakeClock(t0)
	b := NewBucket(1000, 100, clk)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.WaitN(ctx, 1000); err == nil {
		t.Fatal("want error")
	}
}

func TestDefaultBurst(t *testing.T) {
	for _, tt := range []struct{ rate, want int64 }{
		{1, 16 << 10}, {4 << 20, 256 << 10}, {1 << 40, 4 << 20},
	} {
		if got := DefaultBurst(tt.rate); got != tt.want {
			t.Errorf("DefaultBurst(%d) = %d, want %d", tt.rate, got, tt.want)
		}
	}
}
