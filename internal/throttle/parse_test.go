package throttle

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseRule(t *testing.T) {
	h, utc := time.Hour, time.UTC
	weekdays := WeekdaysOf(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday)
	tests := []struct {
		in   string
		want Rule
	}{
		{"wan: 10.0.0.0/8 -> 192.168.50.0/24 10MiB/s mon-fri 08:00-18:00", Rule{
			Name: "wan", Source: pfx("10.0.0.0/8"), Target: pfx("192.168.50.0/24"), Rate: 10 << 20,
			Windows: []Window{{Days: weekdays, From: 8 * h, To: 18 * h, Loc: utc}}}},
		{"all: 1MB", Rule{Name: "all", Rate: 1e6}},
		{"a: any -> * 512B/s", Rule{Name: "a", Rate: 512}},
		{"a: -> 10.0.0.1 1.5KiB", Rule{Name: "a", Target: pfx("10.0.0.1/32"), Rate: 1536}},
		{"a: 10.1.2.3/8,  172.16.0.0/12 ->192.168.0.0/16 100Mbit/s", Rule{Name: "a",
			Source: pfx("10.0.0.0/8", "172.16.0.0/12"), Target: pfx("192.168.0.0/16"), Rate: 12500000}},
		{"v6: 2001:db8::/32->::1 1gbit", Rule{Name: "v6", Source: pfx("2001:db8::/32"), Target: pfx("::1/128"), Rate: 125000000}},
		{"n: 1MiB/s fri-mon 22:00-06:00 WED", Rule{Name: "n", Rate: 1 << 20, Windows: []Window{
			{Days: WeekdaysOf(time.Friday, time.Saturday, time.Sunday, time.Monday), From: 22 * h, To: 6 * h, Loc: utc},
			{Days: WeekdaysOf(time.Wednesday), To: 24 * h, Loc: utc}}}},
		{"n: 1MiB/s 00:00-24:00 daily 12:00-13:00 sat,sun", Rule{Name: "n", Rate: 1 << 20, Windows: []Window{
			{Days: AllDays, To: 24 * h, Loc: utc},
			{Days: AllDays, From: 12 * h, To: 13 * h, Loc: utc},
			{Days: WeekdaysOf(time.Saturday, time.Sunday), To: 24 * h, Loc: utc}}}},
	}
	for _, tt := range tests {
		got, err := ParseRule(tt.in, utc)
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseRule(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
		if again, err := ParseRule(got.String(), utc); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("round trip of %q via %q: %+v, %v", tt.in, got.String(), again, err)
		}
	}
}

func TestParseRuleInvalid(t *testing.T) {
	for _, in := range []string{
		"",
		"10MiB/s",
		"wan 10.0.0.0/8 -> any 1MiB",
		"2001:db8:: -> any 1MiB",
		"w@n: 1MiB",
		"wan:",
		"wan: 10.0.0.0/8 ->",
		"wan: 10.0.0.0/33 -> any 1MiB",
		"wan: 10.0.0.0/8 10.0.0.0/8 -> any 1MiB",
		"wan: fe80::1%eth0 -> any 1MiB",
		"wan: 0B/s",
		"wan: 0.1B/s",
		"wan: 10 MiB/s",
		"wan: 10XB/s",
		"wan: 1.2.3MB",
		"wan: 9999999PiB",
		"wan: 1e9B",
		"wan: NaNB",
		"wan: 1MiB mon-xyz",
		"wan: 1MiB mon 8:00-18:00",
		"wan: 1MiB 08:00-08:00",
		"wan: 1MiB 24:00-08:00",
		"wan: 1MiB 08:00-24:01",
		"wan: 1MiB 08:60-09:00",
		"wan: 1MiB mon-fri garbage",
		"wan: 1MiB -> any",
	} {
		if r, err := ParseRule(in, time.UTC); err == nil {
			t.Errorf("ParseRule(%q) = %+v, want error", in, r)
		}
	}
}

func TestParseRules(t *testing.T) {
	rs, err := ParseRules("# comment\n\nwan: 1MiB\n  lan: -> 10.0.0.0/8 2MiB/s\n", nil)
	if err != nil || len(rs) != 2 || rs[1].Name != "lan" {
		t.Fatalf("got %+v, %v", rs, err)
	}
	if _, err := ParseRules("a: 1MiB\na: 2MiB", nil); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("duplicate: %v", err)
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{
		"wan: 10.0.0.0/8 -> 192.168.50.0/24 10MiB/s mon-fri 08:00-18:00",
		"night: any -> 2001:db8::/32 100Mbit/s daily 22:00-06:00",
		"office: -> 192.168.0.0/16 1.5MB/s sat,sun",
		"x: 10.0.0.1,10.0.0.2->* .5KiB fri-mon 00:00-24:00 wed",
	} {
		f.Add(s)
	}
	a := netip.MustParseAddr("10.0.0.1")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s, time.UTC)
		if err != nil {
			return
		}
		if r.Rate < 1 || r.Rate > maxRate {
			t.Fatalf("rate %d out of range", r.Rate)
		}
		again, err := ParseRule(r.String(), time.UTC)
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip %q -> %q: %+v, %v", s, r.String(), again, err)
		}
		Rules{r}.Match(a, a, t0)
	})
}
