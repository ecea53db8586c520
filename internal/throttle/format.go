package throttle

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// String formats the rule in the grammar accepted by ParseRule.
func (r Rule) String() string {
	var b strings.Builder
	b.WriteString(r.Name + ":")
	if len(r.Source) > 0 || len(r.Target) > 0 {
		fmt.Fprintf(&b, " %s -> %s", formatPrefixes(r.Source), formatPrefixes(r.Target))
	}
	b.WriteString(" " + FormatRate(r.Rate))
	for _, w := range r.Windows {
		b.WriteString(" " + w.String())
	}
	return b.String()
}

func formatPrefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "any"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// String formats the window as "days [HH:MM-HH:MM]" (location omitted).
func (w Window) String() string {
	days := formatDays(w.Days)
	if w.From == 0 && w.To == 24*time.Hour {
		return days
	}
	return fmt.Sprintf("%s %s-%s", days, formatClock(w.From), formatClock(w.To))
}

// formatDays lists days Monday first, runs of three or more as ranges.
func formatDays(w Weekdays) string {
	if w&AllDays == AllDays || w&AllDays == 0 {
		return "daily"
	}
	var parts []string
	for i := 0; i < 7; {
		if !w.Has(time.Weekday((i + 1) % 7)) {
			i++
			continue
		}
		j := i
		for j+1 < 7 && w.Has(time.Weekday((j+2)%7)) {
			j++
		}
		first, last := dayNames[(i+1)%7], dayNames[(j+1)%7]
		switch {
		case j == i:
			parts = append(parts, first)
		case j == i+1:
			parts = append(parts, first, last)
		default:
			parts = append(parts, first+"-"+last)
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func formatClock(d time.Duration) string {
	return fmt.Sprintf("%02d:%02d", int(d/time.Hour), int(d%time.Hour/time.Minute))
}
