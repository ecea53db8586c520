package passhash

import (
	"errors"
	"strings"
	"testing"
)

// cheap keeps the tests fast; Default is checked once.
var cheap = Params{MemoryKiB: 64, Time: 1, Threads: 1}

func TestHashCheck(t *testing.T) {
	enc, err := New("correct horse", Default)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", enc)
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"correct horse", true}, {"correct hors", false}, {"correct horse ", false}, {"", false}} {
		ok, err := Check(tc.pw, enc)
		if err != nil || ok != tc.want {
			t.Errorf("Check(%q) = %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	other, _ := New("correct horse", Default)
	if other == enc {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
}

// knownVector is from the reference implementation's tests
// (phc-winner-argon2 src/test.c: argon2id, v=19, t=2, m=2^16, p=1,
// password "password", salt "somesalt").
const knownVector = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"

func TestKnownVector(t *testing.T) {
	h, err := Parse(knownVector)
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != knownVector {
		t.Fatalf("re-encoded %q", h.String())
	}
	if h.MemoryKiB != 65536 || h.Time != 2 || h.Threads != 1 || string(h.Salt) != "somesalt" {
		t.Fatalf("parsed %+v", h)
	}
	if ok, err := Check("password", h.String()); !ok || err != nil {
		t.Fatalf("known vector does not match: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := New("pw", cheap)
	for _, bad := range []string{
		"",
		"plain",
		strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=64", "m=99999999", 1),
		strings.Replace(good, "t=1", "t=0", 1),
		strings.Replace(good, "t=1", "t=1000", 1),
		strings.Replace(good, "p=1", "p=300", 1),
		strings.Replace(good, "m=64,t=1", "t=1,m=64", 1),
		good + "$x",
		good[:len(good)-30],
		strings.Replace(good, "$argon2id$", "$argon2id$$", 1),
	} {
		if _, err := Parse(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", bad, err)
		}
		if ok, err := Check("pw", bad); ok || err == nil {
			t.Errorf("Check against %q = %v, %v", bad, ok, err)
		}
	}
}

func TestTooLong(t *testing.T) {
	long := strings.Repeat("x", MaxPassword+1)
	if _, err := New(long, cheap); !errors.Is(err, ErrTooLong) {
		t.Fatalf("New: %v", err)
	}
	enc, _ := New(long[:MaxPassword], cheap)
	if ok, _ := Check(long, enc); ok {
		t.Fatal("an over-long password matched")
	}
}

func FuzzParse(f *testing.F) {
	good, _ := New("pw", cheap)
	f.Add(good)
	f.Add(knownVector)
	f.Add("$argon2id$v=19$m=,t=1,p=1$$")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Parse(s)
		if err != nil {
			return
		}
		back, err := Parse(h.String())
		if err != nil || back.String() != h.String() {
			t.Fatalf("round trip of %q: %q, %v", s, back.String(), err)
		}
	})
}
