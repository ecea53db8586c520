package scheduler

import "time"

// wallInstant maps a wall-clock time in loc to an instant:
//   - a wall time that exists once maps to that instant;
//   - one that occurs twice (clocks went back) maps to its first
//     occurrence;
//   - one that does not exist (clocks jumped forward over it) maps to the
//     instant of the jump, the first instant after the gap.
//
// The mapping never decreases as the wall time increases.
func wallInstant(y int, mo time.Month, d, h, m int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, m, 0, 0, loc)
	want := time.Date(y, mo, d, h, m, 0, 0, time.UTC)
	got := wallAsUTC(t)
	switch {
	case got.Equal(want):
		return firstOccurrence(t)
	case got.After(want):
		// time.Date used the offset from before the jump: t lies after
		// the gap, in the zone that starts at the jump.
		if start, _ := t.ZoneBounds(); !start.IsZero() {
			return start
		}
	default:
		// It used the offset from after the jump: t lies before the gap,
		// in the zone that ends at the jump.
		if _, end := t.ZoneBounds(); !end.IsZero() {
			return end
		}
	}
	return t
}

// firstOccurrence returns the earlier instant with the same wall time as t
// when t's wall time occurs twice, else t.
func firstOccurrence(t time.Time) time.Time {
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return t
	}
	_, off := t.Zone()
	_, prevOff := start.Add(-time.Nanosecond).Zone()
	if prevOff <= off {
		return t
	}
	earlier := t.Add(-time.Duration(prevOff-off) * time.Second)
	if earlier.Before(start) && wallAsUTC(earlier).Equal(wallAsUTC(t)) {
		return earlier
	}
	return t
}

// wallAsUTC returns t's wall clock reading as a UTC instant, for comparing
// wall times.
func wallAsUTC(t time.Time) time.Time {
	y, mo, d := t.Date()
	return time.Date(y, mo, d, t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}
