package scheduler

import (
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // zones for the DST cases, whatever the host has
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

const mon = "2024-01-15T10:07:30Z" // a Monday

// cronNextCases: expression, zone ("" = UTC), after, expected next.
var cronNextCases = []struct {
	expr, zone, after, want string
}{
	{"* * * * *", "", mon, "2024-01-15T10:08:00Z"},
	{"*/15 * * * *", "", mon, "2024-01-15T10:15:00Z"},
	{"0 * * * *", "", mon, "2024-01-15T11:00:00Z"},
	{"0 * * * *", "", "2024-01-15T11:00:00Z", "2024-01-15T12:00:00Z"},
	{"0 * * * *", "", "2024-01-15T10:59:59.999Z", "2024-01-15T11:00:00Z"},
	{"30 2 * * *", "", mon, "2024-01-16T02:30:00Z"},
	{"0 0 1 * *", "", mon, "2024-02-01T00:00:00Z"},
	{"0 0 1 1 *", "", mon, "2025-01-01T00:00:00Z"},
	{"0 9 * * MON-FRI", "", mon, "2024-01-16T09:00:00Z"},
	{"0 9 * * SAT,SUN", "", mon, "2024-01-20T09:00:00Z"},
	{"0 9 * * 0", "", mon, "2024-01-21T09:00:00Z"},
	{"0 9 * * 7", "", mon, "2024-01-21T09:00:00Z"},
	{"0 9 * * 5-7", "", mon, "2024-01-19T09:00:00Z"},
	{"0 9 * * MON-SUN", "", mon, "2024-01-16T09:00:00Z"},
	{"0 9 * * sun", "", mon, "2024-01-21T09:00:00Z"},
	{"1-30/5 * * * *", "", mon, "2024-01-15T10:11:00Z"},
	{"5/20 * * * *", "", mon, "2024-01-15T10:25:00Z"},
	{"0,30 8-18/2 * * *", "", mon, "2024-01-15T10:30:00Z"},
	{"0 0 29 2 *", "", mon, "2024-02-29T00:00:00Z"},
	{"0 0 29 2 *", "", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
	{"0 0 29 FEB */7", "", mon, "2032-02-29T00:00:00Z"}, // AND: Feb 29 on a Sunday
	{"0 0 13 * FRI", "", mon, "2024-01-19T00:00:00Z"},   // OR: the 13th or a Friday
	{"0 0 */2 * SAT", "", mon, "2024-01-27T00:00:00Z"},  // "*/2" counts as *: odd day AND Saturday
	{"0 0 1-7 * MON", "", mon, "2024-01-22T00:00:00Z"},  // OR, not "first Monday"
	{"0 0 29 2 MON", "", mon, "2024-02-05T00:00:00Z"},   // OR within February
	{"0 0 * JAN,JUL *", "", mon, "2024-01-16T00:00:00Z"},
	{"0 0 1 jul *", "", mon, "2024-07-01T00:00:00Z"},
	{"0 0 1 JAN-MAR/2 *", "", mon, "2024-03-01T00:00:00Z"},
	{"59 23 31 12 *", "", mon, "2024-12-31T23:59:00Z"},
	{"0 12 31 * *", "", "2024-02-01T00:00:00Z", "2024-03-31T12:00:00Z"},
	{"@hourly", "", mon, "2024-01-15T11:00:00Z"},
	{"@daily", "", mon, "2024-01-16T00:00:00Z"},
	{"@weekly", "", mon, "2024-01-21T00:00:00Z"},
	{"@monthly", "", mon, "2024-02-01T00:00:00Z"},
	{"@yearly", "", mon, "2025-01-01T00:00:00Z"},
	{"0 2 * * *", "Europe/Berlin", mon, "2024-01-16T02:00:00+01:00"},

	// Europe/Berlin: 2024-03-31 02:00 CET → 03:00 CEST; 2024-10-27 03:00 CEST → 02:00 CET.
	{"30 2 * * *", "Europe/Berlin", "2024-03-30T12:00:00+01:00", "2024-03-31T03:00:00+02:00"}, // skipped: at the jump
	{"30 2 * * *", "Europe/Berlin", "2024-03-31T03:00:00+02:00", "2024-04-01T02:30:00+02:00"},
	{"*/15 2 * * *", "Europe/Berlin", "2024-03-31T01:50:00+01:00", "2024-03-31T03:00:00+02:00"}, // four times collapse to one
	{"*/15 2 * * *", "Europe/Berlin", "2024-03-31T03:00:00+02:00", "2024-04-01T02:00:00+02:00"},
	{"0 3 * * *", "Europe/Berlin", "2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00"},
	{"0 0 * * *", "Europe/Berlin", "2024-03-30T12:00:00+01:00", "2024-03-31T00:00:00+01:00"},
	{"* * * * *", "Europe/Berlin", "2024-03-31T01:59:00+01:00", "2024-03-31T03:00:00+02:00"},
	{"30 2 * * *", "Europe/Berlin", "2024-10-26T12:00:00+02:00", "2024-10-27T02:30:00+02:00"}, // repeated: first
	{"30 2 * * *", "Europe/Berlin", "2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"}, // not again
	{"0 * * * *", "Europe/Berlin", "2024-10-27T02:00:00+02:00", "2024-10-27T03:00:00+01:00"},
	{"45 2 * * *", "Europe/Berlin", "2024-10-27T02:10:00+01:00", "2024-10-28T02:45:00+01:00"}, // after in the second pass
	{"* * * * *", "Europe/Berlin", "2024-10-27T02:59:00+02:00", "2024-10-27T03:00:00+01:00"},

	// America/New_York: 2024-03-10 02:00 EST → 03:00 EDT; 2024-11-03 02:00 EDT → 01:00 EST.
	{"30 2 * * *", "America/New_York", "2024-03-09T12:00:00-05:00", "2024-03-10T03:00:00-04:00"},
	{"30 1 * * *", "America/New_York", "2024-11-02T12:00:00-04:00", "2024-11-03T01:30:00-04:00"},
	{"30 1 * * *", "America/New_York", "2024-11-03T01:30:00-04:00", "2024-11-04T01:30:00-05:00"},

	// Half-hour shifts: Lord Howe 2024-04-07 02:00 → 01:30, 2024-10-06 02:00 → 02:30.
	{"45 1 * * *", "Australia/Lord_Howe", "2024-04-06T12:00:00+11:00", "2024-04-07T01:45:00+11:00"},
	{"45 1 * * *", "Australia/Lord_Howe", "2024-04-07T01:45:00+11:00", "2024-04-08T01:45:00+10:30"},
	{"15 2 * * *", "Australia/Lord_Howe", "2024-10-05T12:00:00+10:30", "2024-10-06T02:30:00+11:00"},

	// Changes at midnight: Santiago 2024-04-07 00:00 → 04-06 23:00, 2024-09-08 00:00 → 01:00.
	{"30 23 * * *", "America/Santiago", "2024-04-06T12:00:00-03:00", "2024-04-06T23:30:00-03:00"},
	{"30 23 * * *", "America/Santiago", "2024-04-06T23:30:00-03:00", "2024-04-07T23:30:00-04:00"},
	{"0 0 * * *", "America/Santiago", "2024-09-07T12:00:00-04:00", "2024-09-08T01:00:00-03:00"},
	{"30 0 * * *", "America/Santiago", "2024-09-07T12:00:00-04:00", "2024-09-08T01:00:00-03:00"},

	// Samoa skipped 2011-12-30 entirely.
	{"0 12 * * *", "Pacific/Apia", "2011-12-29T12:00:00-10:00", "2011-12-31T00:00:00+14:00"},
	{"0 12 * * *", "Pacific/Apia", "2011-12-31T00:00:00+14:00", "2011-12-31T12:00:00+14:00"},
	{"0 12 30 12 *", "Pacific/Apia", "2011-12-29T12:00:00-10:00", "2011-12-31T00:00:00+14:00"},
}

func TestCronNext(t *testing.T) {
	for _, tc := range cronNextCases {
		c, err := ParseCron(tc.expr)
		if err != nil {
			t.Errorf("ParseCron(%q): %v", tc.expr, err)
			continue
		}
		var loc *time.Location
		if tc.zone != "" {
			loc = mustLoc(t, tc.zone)
		}
		after, want := mustTime(t, tc.after), mustTime(t, tc.want)
		got := c.Next(after, loc)
		if !got.Equal(want) {
			t.Errorf("%q in %s after %s: got %s, want %s", tc.expr, tc.zone, tc.after,
				got.In(after.Location()).Format(time.RFC3339), tc.want)
		}
		if tc.zone != "" && got.Location() != loc {
			t.Errorf("%q: result in %v, want %v", tc.expr, got.Location(), loc)
		}
	}
}

func TestCronParseErrors(t *testing.T) {
	tests := []struct{ expr, field string }{
		{"", ""}, {"* * * *", ""}, {"* * * * * *", ""}, {"@reboot", ""},
		{"60 * * * *", "minute"}, {"-1 * * * *", "minute"}, {"+5 * * * *", "minute"},
		{"* 24 * * *", "hour"}, {"* * 0 * *", "day-of-month"}, {"* * 32 * *", "day-of-month"},
		{"* * * 0 *", "month"}, {"* * * 13 *", "month"}, {"* * * * 8", "day-of-week"},
		{"5-1 * * * *", "minute"}, {"*/0 * * * *", "minute"}, {"*/60 * * * *", "minute"},
		{"a * * * *", "minute"}, {"1,,2 * * * *", "minute"}, {"1, * * * *", "minute"},
		{"- * * * *", "minute"}, {"1- * * * *", "minute"}, {"*/ * * * *", "minute"},
		{"1-5/2/3 * * * *", "minute"}, {"** * * * *", "minute"}, {"MON * * * *", "minute"},
		{"* * * FEB-JAN *", "month"}, {"* * * * FRI-MON", "day-of-week"}, {"* * * JANUARY *", "month"},
		{"0 0 30 2 *", ""}, {"0 0 31 4,6,9,11 *", ""}, {"0 0 31 FEB */2", ""},
		{"99999999999999999999 * * * *", "minute"}, {"*/99999999999 * * * *", "minute"},
	}
	for _, tc := range tests {
		_, err := ParseCron(tc.expr)
		var ce *CronError
		if !errors.As(err, &ce) {
			t.Errorf("ParseCron(%q) = %v, want a *CronError", tc.expr, err)
			continue
		}
		if ce.Field != tc.field {
			t.Errorf("ParseCron(%q): field %q, want %q (%v)", tc.expr, ce.Field, tc.field, err)
		}
	}
	// Both day fields restricted: OR, so February 30 is fine with a weekday.
	if _, err := ParseCron("0 0 30 2 MON"); err != nil {
		t.Errorf("0 0 30 2 MON: %v", err)
	}
}

// matchesWall is the reference: does the wall time of t match c?
func (c *Cron) matchesWall(t time.Time) bool {
	y, mo, d := t.Date()
	return t.Second() == 0 && t.Nanosecond() == 0 && c.minute&(1<<uint(t.Minute())) != 0 &&
		c.hour&(1<<uint(t.Hour())) != 0 && c.month&(1<<uint(mo)) != 0 && c.dayMatches(y, mo, d)
}

// bruteNext walks minute by minute in UTC (skipping whole days whose date
// does not match) for at most limit minutes.
func (c *Cron) bruteNext(after time.Time, limit int) time.Time {
	t := after.UTC().Truncate(time.Minute)
	end := t.Add(time.Duration(limit) * time.Minute)
	for t = t.Add(time.Minute); !t.After(end); t = t.Add(time.Minute) {
		y, mo, d := t.Date()
		if c.month&(1<<uint(mo)) == 0 || !c.dayMatches(y, mo, d) {
			t = time.Date(y, mo, d, 23, 59, 0, 0, time.UTC)
			continue
		}
		if c.matchesWall(t) {
			return t
		}
	}
	return time.Time{}
}

func randomField(r *rand.Rand, lo, hi int, names []string) string {
	pick := func() string {
		v := lo + r.IntN(hi-lo+1)
		if names != nil && r.IntN(3) == 0 && v-lo < len(names) {
			return strings.ToLower(names[v-lo])
		}
		return strconv.Itoa(v)
	}
	var items []string
	for range 1 + r.IntN(3) {
		switch r.IntN(5) {
		case 0:
			return "*"
		case 1:
			return "*/" + strconv.Itoa(1+r.IntN(hi/2+1))
		case 2:
			a, b := lo+r.IntN(hi-lo+1), lo+r.IntN(hi-lo+1)
			items = append(items, strconv.Itoa(min(a, b))+"-"+strconv.Itoa(max(a, b)))
		case 3:
			a := lo + r.IntN(hi-lo+1)
			items = append(items, strconv.Itoa(a)+"-"+strconv.Itoa(hi)+"/"+strconv.Itoa(1+r.IntN(5)))
		default:
			items = append(items, pick())
		}
	}
	return strings.Join(items, ",")
}

// TestCronAgainstBruteForce compares Next with a minute-by-minute walk for
// random expressions (in UTC, where every wall time exists once).
func TestCronAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := mustTime(t, "2023-12-20T00:00:00Z")
	checked := 0
	for checked < 2000 {
		expr := strings.Join([]string{
			randomField(r, 0, 59, nil), randomField(r, 0, 23, nil), randomField(r, 1, 31, nil),
			randomField(r, 1, 12, cronFields[3].names), randomField(r, 0, 6, cronFields[4].names),
		}, " ")
		c, err := ParseCron(expr)
		if err != nil {
			continue
		}
		after := base.Add(time.Duration(r.IntN(400*24*60)) * time.Minute).Add(time.Duration(r.IntN(60)) * time.Second)
		want := c.bruteNext(after, 2*366*24*60)
		if want.IsZero() {
			continue
		}
		if got := c.Next(after, nil); !got.Equal(want) {
			t.Fatalf("%q after %s: got %s, brute force %s", expr, after, got, want)
		}
		checked++
	}
}

func TestCronString(t *testing.T) {
	c, err := ParseCron("  0 2 * * MON-FRI ")
	if err != nil || c.String() != "0 2 * * MON-FRI" {
		t.Fatalf("String = %q, %v", c.String(), err)
	}
}
