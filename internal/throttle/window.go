package throttle

import "time"

// Weekdays is a set of days of the week, bit i standing for time.Weekday(i).
// The zero value means every day.
type Weekdays uint8

// AllDays is the set of all seven weekdays.
const AllDays Weekdays = 1<<7 - 1

// WeekdaysOf returns the set of the given days.
func WeekdaysOf(days ...time.Weekday) Weekdays {
	var w Weekdays
	for _, d := range days {
		w |= 1 << (uint(d) % 7)
	}
	return w
}

// Has reports whether d is in the set; the empty set contains every day.
func (w Weekdays) Has(d time.Weekday) bool {
	return w&AllDays == 0 || w&(1<<(uint(d)%7)) != 0
}

// Window is a recurring period: on each of Days, from the wall-clock time
// of day From (inclusive) to To (exclusive), both offsets from local
// midnight in Loc (nil means UTC). To < From crosses midnight, the window
// belonging to the day it starts on; To == From covers the whole day
// starting at From. To may be 24h.
type Window struct {
	Days     Weekdays
	From, To time.Duration
	Loc      *time.Location
}

// Active reports whether t falls inside the window.
func (w Window) Active(t time.Time) bool {
	loc := w.Loc
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	h, m, s := lt.Clock()
	tod := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(lt.Nanosecond())
	day := lt.Weekday()
	yesterday := (day + 6) % 7
	switch {
	case w.From < w.To:
		return w.Days.Has(day) && tod >= w.From && tod < w.To
	case w.From == w.To && w.From == 0:
		return w.Days.Has(day)
	default: // crosses midnight (or a full day starting at From)
		return (w.Days.Has(day) && tod >= w.From) ||
			(w.Days.Has(yesterday) && tod < w.To)
	}
}
