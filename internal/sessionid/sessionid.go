package sessionid

import (
	"fmt"
	"strconv"
	"strings"
)

// Format returns the ID of session n: prefix and n in eight (or more)
// decimal digits.
func Format(prefix string, n int64) string { return fmt.Sprintf("%s%08d", prefix, n) }

// Parse returns the session number id names: prefix and decimal digits
// (an ID valid accepts, as the package of the prefix validates its IDs),
// or a bare session number. A number must be positive.
func Parse(id, prefix string, valid func(string) bool) (int64, bool) {
	digits, prefixed := strings.CutPrefix(id, prefix)
	if prefixed && !valid(id) {
		return 0, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
