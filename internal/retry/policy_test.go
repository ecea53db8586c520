package retry

import (
	"testing"
	"time"
)

func TestOr(t *testing.T) {
	def := Policy{Attempts: 10, Initial: 200 * time.Millisecond, Max: 15 * time.Second}
	for _, tc := range []struct {
		in, want Policy
	}{
		{Policy{}, def},
		{Policy{Attempts: 3}, Policy{Attempts: 3, Initial: def.Initial, Max: def.Max}},
		{Policy{Initial: time.Millisecond, Max: -1}, Policy{Attempts: 10, Initial: time.Millisecond, Max: def.Max}},
		{Policy{Attempts: 1, Initial: 1, Max: 2}, Policy{Attempts: 1, Initial: 1, Max: 2}},
	} {
		if got := tc.in.Or(def); got != tc.want {
			t.Errorf("%+v.Or = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second}
	for _, tc := range []struct {
		n    int
		base time.Duration
	}{
		{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond},
		{5, time.Second}, {50, time.Second},
	} {
		for range 100 {
			d := p.Backoff(tc.n)
			if d < tc.base-tc.base/4 || d > tc.base+tc.base/4 {
				t.Fatalf("Backoff(%d) = %v, want %v ± 25 %%", tc.n, d, tc.base)
			}
		}
	}
}
