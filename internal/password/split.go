package password

import (
	"errors"
	"strings"
)

// ErrQuote is returned by Split for an unterminated quote or a final
// backslash.
var ErrQuote = errors.New("unterminated quote or escape in the command")

// Split splits a command line into words like a POSIX shell, without
// expanding anything: blanks (space, tab, newline) separate words;
// 'single quotes' keep every character; "double quotes" keep every
// character but a backslash before " or \; a backslash outside quotes
// keeps the next character.
func Split(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			continue
		case c == '\\':
			if i+1 >= len(s) {
				return nil, ErrQuote
			}
			i++
			w.WriteByte(s[i])
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, ErrQuote
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			n, err := doubleQuoted(&w, s[i+1:])
			if err != nil {
				return nil, err
			}
			i += n + 1
		default:
			w.WriteByte(c)
		}
		inWord = true
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// doubleQuoted writes the text of a double-quoted string that starts at
// s (after the opening quote) and returns how many bytes it used,
// including the closing quote.
func doubleQuoted(w *strings.Builder, s string) (int, error) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1, nil
		case c == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\'):
			i++
			w.WriteByte(s[i])
		default:
			w.WriteByte(c)
		}
	}
	return 0, ErrQuote
}
