package guest

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTailBuffer(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		writes []string
		want   string
	}{
		{"fits", 16, []string{"abc", "\ndef"}, "abc\ndef"},
		{"exactly full", 6, []string{"abc", "def"}, "abcdef"},
		{"one big write", 60, []string{strings.Repeat("x", 100) + "END"}, "[holdfast: 83 bytes of output dropped]\n" + strings.Repeat("x", 17) + "END"},
		{"many writes", 60, []string{strings.Repeat("a", 50), strings.Repeat("b", 50), "END"}, "[holdfast: 83 bytes of output dropped]\n" + strings.Repeat("b", 17) + "END"},
		{"utf-8 boundary", 45, []string{strings.Repeat("é", 40)}, "[holdfast: 74 bytes of output dropped]\nééé"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newTailBuffer(tc.max)
			for _, w := range tc.writes {
				_, _ = b.Write([]byte(w))
			}
			got := b.String()
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			if len(got) > tc.max || !utf8.ValidString(got) {
				t.Errorf("%d bytes (max %d), valid UTF-8 %v", len(got), tc.max, utf8.ValidString(got))
			}
		})
	}
}

func TestCombineOutput(t *testing.T) {
	if got := combineOutput([]byte("out\n"), []byte("err\n"), false); got != "out\nerr\n" {
		t.Errorf("got %q", got)
	}
	got := combineOutput([]byte(strings.Repeat("o", MaxOutput)), []byte("err\n"), true)
	if len(got) > MaxOutput || !strings.HasPrefix(got, "[holdfast: the guest agent truncated") || !strings.HasSuffix(got, "oerr\n") {
		t.Errorf("%d bytes: %.100q", len(got), got)
	}
}
