package vmx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrSyntax is matched by the error of .vmx text that does not parse.
var ErrSyntax = errors.New("vmx: syntax error")

// maxText bounds the .vmx text Parse reads (real ones are a few KiB).
const maxText = 1 << 20

// Parse reads .vmx text into its keys (lower-cased, as ESXi treats them)
// and decoded values. Blank lines and # comments are skipped; a line that
// is not `key = "value"`, a key given twice or an invalid |XX escape is an
// error.
func Parse(b []byte) (map[string]string, error) {
	if len(b) > maxText {
		return nil, fmt.Errorf("%w: %d bytes", ErrSyntax, len(b))
	}
	out := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !validKey(k) || len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' || strings.Contains(v[1:len(v)-1], `"`) {
			return nil, fmt.Errorf("%w: line %d", ErrSyntax, i+1)
		}
		val, err := unquote(v[1 : len(v)-1])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrSyntax, i+1, err)
		}
		k = strings.ToLower(k)
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%w: line %d: key %s given twice", ErrSyntax, i+1, k)
		}
		out[k] = val
	}
	return out, nil
}

func validKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range []byte(k) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

func unquote(s string) (string, error) {
	if !strings.Contains(s, "|") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '|' {
			b.WriteByte(s[i])
			continue
		}
		if i+3 > len(s) {
			return "", fmt.Errorf("short escape at %d", i)
		}
		n, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape %q", s[i:i+3])
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String(), nil
}
