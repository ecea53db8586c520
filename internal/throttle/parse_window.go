package throttle

import (
	"fmt"
	"strings"
	"time"
)

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// parseWindows parses "{ days [times] | times }".
func parseWindows(toks []string, loc *time.Location) ([]Window, error) {
	var ws []Window
	for len(toks) > 0 {
		w := Window{Days: AllDays, To: 24 * time.Hour, Loc: loc}
		days, err := parseDays(toks[0])
		if err == nil {
			w.Days = days
			toks = toks[1:]
		}
		if len(toks) > 0 {
			if from, to, terr := parseTimes(toks[0]); terr == nil {
				w.From, w.To = from, to
				toks = toks[1:]
			} else if err != nil {
				return nil, fmt.Errorf("bad window %q: %v", toks[0], terr)
			}
		}
		ws = append(ws, w)
	}
	return ws, nil
}

// parseDays parses "daily" or a comma list of days and day ranges.
func parseDays(s string) (Weekdays, error) {
	s = strings.ToLower(s)
	if s == "daily" {
		return AllDays, nil
	}
	var w Weekdays
	for part := range strings.SplitSeq(s, ",") {
		a, b, isRange := strings.Cut(part, "-")
		from, err := parseDay(a)
		if err != nil {
			return 0, err
		}
		to := from
		if isRange {
			if to, err = parseDay(b); err != nil {
				return 0, err
			}
		}
		for d := from; ; d = (d + 1) % 7 {
			w |= 1 << d
			if d == to {
				break
			}
		}
	}
	return w, nil
}

func parseDay(s string) (time.Weekday, error) {
	for i, n := range dayNames {
		if s == n {
			return time.Weekday(i), nil
		}
	}
	return 0, fmt.Errorf("bad day %q", s)
}

// parseTimes parses "HH:MM-HH:MM".
func parseTimes(s string) (from, to time.Duration, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return 0, 0, fmt.Errorf("want HH:MM-HH:MM")
	}
	if from, err = parseClock(a, false); err != nil {
		return 0, 0, err
	}
	if to, err = parseClock(b, true); err != nil {
		return 0, 0, err
	}
	if from == to {
		return 0, 0, fmt.Errorf("empty time range %q", s)
	}
	return from, to, nil
}

// parseClock parses "HH:MM" (00:00..23:59, or 24:00 if allow24).
func parseClock(s string, allow24 bool) (time.Duration, error) {
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("bad time %q: want HH:MM", s)
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("bad time %q: want HH:MM", s)
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if m > 59 || h > 24 || h == 24 && (m != 0 || !allow24) {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute, nil
}
