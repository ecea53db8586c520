package scheduler

import "time"

// searchYears bounds the search for the next match. Any satisfiable
// expression matches within one 400-year Gregorian cycle.
const searchYears = 401

// Next returns the first instant strictly after after at which the
// expression fires in loc (UTC if nil), or the zero time if there is none
// within 400 years. Daylight saving changes are handled as the package
// documentation describes.
func (c *Cron) Next(after time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	w := after.In(loc)
	y, mo, d := w.Date()
	// Wall times up to after's own minute map to instants <= after (the
	// wall-to-instant mapping is monotonic), so the first day starts after
	// that minute.
	fromH, fromM := w.Hour(), w.Minute()+1
	end := y + searchYears
	for y < end {
		if c.month&(1<<uint(mo)) == 0 {
			y, mo, d = nextMonth(y, mo)
			fromH, fromM = 0, 0
			continue
		}
		if c.dayMatches(y, mo, d) {
			if t, ok := c.firstInDay(y, mo, d, fromH, fromM, after, loc); ok {
				return t
			}
		}
		y, mo, d = nextDay(y, mo, d)
		fromH, fromM = 0, 0
	}
	return time.Time{}
}

// dayMatches applies the Vixie rule to a civil date.
func (c *Cron) dayMatches(y int, mo time.Month, d int) bool {
	wd := time.Date(y, mo, d, 0, 0, 0, 0, time.UTC).Weekday()
	domOK := c.dom&(1<<uint(d)) != 0
	dowOK := c.dow&(1<<uint(wd)) != 0
	if c.domStar || c.dowStar {
		return domOK && dowOK
	}
	return domOK || dowOK
}

// firstInDay returns the first matching wall time of the day at or after
// fromH:fromM whose instant is after after.
func (c *Cron) firstInDay(y int, mo time.Month, d, fromH, fromM int, after time.Time, loc *time.Location) (time.Time, bool) {
	for h := fromH; h < 24; h++ {
		if c.hour&(1<<uint(h)) == 0 {
			continue
		}
		m0 := 0
		if h == fromH {
			m0 = fromM
		}
		for m := m0; m < 60; m++ {
			if c.minute&(1<<uint(m)) == 0 {
				continue
			}
			if t := wallInstant(y, mo, d, h, m, loc); t.After(after) {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

func nextDay(y int, mo time.Month, d int) (int, time.Month, int) {
	t := time.Date(y, mo, d+1, 12, 0, 0, 0, time.UTC)
	return t.Year(), t.Month(), t.Day()
}

func nextMonth(y int, mo time.Month) (int, time.Month, int) {
	if mo == time.December {
		return y + 1, time.January, 1
	}
	return y, mo + 1, 1
}
