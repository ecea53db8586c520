package throttle

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// maxRate bounds parsed rates (1 PiB/s) so arithmetic cannot overflow.
const maxRate = 1 << 50

var rateUnits = map[string]float64{
	"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
}

// ParseRate parses a rate such as "10MiB/s", "1.5MB", "100Mbit/s" or
// "512B/s" into bytes per second. The result is at least 1.
func ParseRate(s string) (int64, error) {
	t := strings.TrimSuffix(strings.ToLower(s), "/s")
	i := strings.IndexFunc(t, func(c rune) bool { return (c < '0' || c > '9') && c != '.' })
	if i <= 0 {
		return 0, fmt.Errorf("bad rate %q: want number and unit, e.g. 10MiB/s", s)
	}
	num, unit := t[:i], t[i:]
	mult, ok := rateUnits[unit]
	if !ok || strings.Count(num, ".") > 1 || num == "." {
		return 0, fmt.Errorf("bad rate %q: unknown unit or number", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("bad rate %q: %w", s, err)
	}
	v := math.Round(f * mult)
	if v < 1 || v > maxRate {
		return 0, fmt.Errorf("bad rate %q: must be between 1 B/s and 1 PiB/s", s)
	}
	return int64(v), nil
}

// FormatRate formats bytes per second in the largest binary, else decimal,
// unit that represents it exactly, e.g. "10MiB/s", "1500KB/s" or "999B/s".
func FormatRate(rate int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}} {
		if rate >= u.size && rate%u.size == 0 {
			return strconv.FormatInt(rate/u.size, 10) + u.name + "/s"
		}
	}
	return strconv.FormatInt(rate, 10) + "B/s"
}
