package sessionid

import (
	"regexp"
	"strings"
	"testing"
)

var eightHex = regexp.MustCompile(`^x-[0-9a-f]{8}$`).MatchString

func TestFormatAndParse(t *testing.T) {
	if id := Format("x-", 42); id != "x-00000042" {
		t.Errorf("Format = %q", id)
	}
	for in, want := range map[string]int64{
		"x-00000042": 42, "42": 42, "x-99999999": 99999999,
		"x-0000004a": 0, "x-42": 0, "0": 0, "-3": 0, "+3": 0, "": 0, "x-00000000": 0,
		"y-00000042": 0, "x-": 0, "123456789012345678901": 0,
	} {
		if n, ok := Parse(in, "x-", eightHex); n != want || ok != (want > 0) {
			t.Errorf("Parse(%q) = %d %v, want %d", in, n, ok, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"x-00000042", "42", "x-0000004a", "", "-1", "x-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		n, ok := Parse(id, "x-", eightHex)
		if ok && (n <= 0 || strings.HasPrefix(id, "x-") && Format("x-", n) != id) {
			t.Errorf("Parse(%q) = %d", id, n)
		}
		if !ok && n != 0 {
			t.Errorf("Parse(%q) refused, yet %d", id, n)
		}
	})
}
