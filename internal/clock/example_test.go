package clock_test

import (
	"context"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// waitFor polls ready every 50 ms for up to a minute, on clk.
func waitFor(ctx context.Context, clk clock.Clock, ready func() bool) error {
	deadline := clk.Now().Add(time.Minute)
	for !ready() {
		if clk.Now().After(deadline) {
			return fmt.Errorf("not ready within a minute")
		}
		if err := clk.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// A fake clock runs a minute of polling at once.
func Example() {
	clk := clock.NewFake(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC))
	err := waitFor(context.Background(), clk, func() bool { return false })
	fmt.Println(err, clk.Now().Format(time.TimeOnly))
	// Output: not ready within a minute 10:01:00
}
