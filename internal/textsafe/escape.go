package textsafe

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Escape makes guest bytes safe to print: printable UTF-8 stays as is,
// anything else (control characters, newlines, invalid bytes, a
// backslash) is written as a Go escape, so a name cannot move the cursor
// or forge another line.
func Escape(s string) string {
	safe := true
	for _, r := range s {
		if r == utf8.RuneError || r == '\\' || !strconv.IsPrint(r) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	q := strconv.Quote(s)
	return strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
}
