package textsafe

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"/etc/passwd":     "/etc/passwd",
		"/a b: c":         "/a b: c",
		"/we\nird":        `/we\nird`,
		"/\x1b[2J":        `/\x1b[2J`,
		"/\xff":           `/\xff`,
		`/back\slash "q"`: `/back\\slash "q"`,
		"/naïve/ünïcödé":  "/naïve/ünïcödé",
		"/\u202eevil.exe": `/\u202eevil.exe`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"/etc/passwd", "/we\nird", "/\x1b[2J", "/\xff", "/\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e := Escape(s)
		if !utf8.ValidString(e) || strings.ContainsAny(e, "\n\r\x1b") {
			t.Fatalf("Escape(%q) = %q", s, e)
		}
	})
}
