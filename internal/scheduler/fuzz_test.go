package scheduler

import (
	"errors"
	"testing"
	"time"
)

// FuzzParseCron: ParseCron never panics, fails only with a *CronError, and
// an accepted expression's Next is after the given time, matches the
// expression (in UTC, where every wall time exists once), and skips no
// earlier match.
func FuzzParseCron(f *testing.F) {
	for _, seed := range []string{
		"* * * * *", "*/15 * * * *", "0 2 * * MON-FRI", "1-30/5 0,12 1,15 JAN-jun SUN",
		"0 0 29 2 *", "0 0 29 FEB */7", "5/20 * * * 7", "@hourly", "@weekly", "0 0 30 2 *",
		"60 * * * *", "1-", "*/0 * * * *", "0 0 13 * FRI", "0 0 */2 * SAT", "MON-SUN",
	} {
		f.Add(seed, int64(1705313250))
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, expr string, unix int64) {
		c, err := ParseCron(expr)
		if err != nil {
			var ce *CronError
			if !errors.As(err, &ce) {
				t.Fatalf("ParseCron(%q): %T %v", expr, err, err)
			}
			return
		}
		// Keep the instant between 1970 and 2200.
		after := time.Unix(unix%(230*365*24*3600), 0).UTC()
		if unix < 0 {
			after = time.Unix(-unix%(230*365*24*3600), 0).UTC()
		}
		got := c.Next(after, time.UTC)
		if got.IsZero() {
			t.Fatalf("%q after %s: no next time", expr, after)
		}
		if !got.After(after) || !c.matchesWall(got) {
			t.Fatalf("%q after %s: got %s", expr, after, got)
		}
		if got.Sub(after) < 3*24*time.Hour {
			if want := c.bruteNext(after, 3*24*60); !want.Equal(got) {
				t.Fatalf("%q after %s: got %s, brute force %s", expr, after, got, want)
			}
		}
		if b := c.Next(after, berlin); !b.After(after) {
			t.Fatalf("%q after %s in Berlin: got %s", expr, after, b)
		}
	})
}
