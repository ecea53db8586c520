package throttle

import (
	"net/netip"
	"testing"
	"time"
)

func pfx(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestRulesMatchNetworks(t *testing.T) {
	rs := Rules{
		{Name: "wan", Source: pfx("10.0.0.0/8"), Target: pfx("192.168.50.0/24"), Rate: 10 << 20},
		{Name: "slow-host", Target: pfx("192.168.50.7/32"), Rate: 1 << 20},
		{Name: "v6", Source: pfx("2001:db8::/32"), Rate: 5 << 20},
		{Name: "disabled", Rate: 0},
		{Name: "tie", Source: pfx("10.1.0.0/16"), Target: pfx("192.168.50.0/24"), Rate: 10 << 20},
	}
	tests := []struct {
		src, dst string
		rate     int64
		rule     string
	}{
		{"10.1.2.3", "192.168.50.1", 10 << 20, "wan"}, // tie: earlier wins
		{"10.1.2.3", "192.168.50.7", 1 << 20, "slow-host"},
		{"172.16.0.1", "192.168.50.7", 1 << 20, "slow-host"},
		{"172.16.0.1", "192.168.50.1", 0, ""},
		{"11.0.0.1", "192.168.50.1", 0, ""},
		{"10.255.255.255", "192.168.51.1", 0, ""},
		{"::ffff:10.0.0.1", "::ffff:192.168.50.2", 10 << 20, "wan"},
		{"2001:db8::1", "::1", 5 << 20, "v6"},
		{"2001:db9::1", "::1", 0, ""},
	}
	for _, tt := range tests {
		rate, rule := rs.Match(netip.MustParseAddr(tt.src), netip.MustParseAddr(tt.dst), t0)
		if rate != tt.rate || rule != tt.rule {
			t.Errorf("Match(%s, %s) = %d %q, want %d %q", tt.src, tt.dst, rate, rule, tt.rate, tt.rule)
		}
	}
}

func TestRulesMostRestrictiveActive(t *testing.T) {
	utc := time.UTC
	rs := Rules{
		{Name: "always", Rate: 100},
		{Name: "office", Rate: 10, Windows: []Window{{Days: WeekdaysOf(time.Monday), From: 8 * time.Hour, To: 18 * time.Hour, Loc: utc}}},
	}
	a := netip.MustParseAddr("10.0.0.1")
	mon := time.Date(2026, 11, 23, 0, 0, 0, 0, utc) // a Monday
	for _, tt := range []struct {
		at   time.Time
		rule string
	}{
		{mon.Add(7*time.Hour + 59*time.Minute), "always"},
		{mon.Add(8 * time.Hour), "office"},
		{mon.Add(18*time.Hour - time.Nanosecond), "office"},
		{mon.Add(18 * time.Hour), "always"},
		{mon.Add(24*time.Hour + 9*time.Hour), "always"}, // Tuesday
	} {
		if _, rule := rs.Match(a, a, tt.at); rule != tt.rule {
			t.Errorf("at %v: %q, want %q", tt.at, rule, tt.rule)
		}
	}
}

func TestWindowActive(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	h := time.Hour
	fri := WeekdaysOf(time.Friday)
	at := func(y int, mo time.Month, d, hh, mm int, loc *time.Location) time.Time {
		return time.Date(y, mo, d, hh, mm, 0, 0, loc)
	}
	tests := []struct {
		name string
		w    Window
		t    time.Time
		want bool
	}{
		{"plain inside", Window{From: 8 * h, To: 18 * h}, at(2026, 11, 23, 12, 0, time.UTC), true},
		{"plain before", Window{From: 8 * h, To: 18 * h}, at(2026, 11, 23, 7, 59, time.UTC), false},
		{"zero days = all", Window{From: 0, To: 24 * h}, at(2026, 11, 22, 23, 59, time.UTC), true},
		{"midnight fri evening", Window{Days: fri, From: 22 * h, To: 6 * h}, at(2026, 11, 27, 23, 0, time.UTC), true},
		{"midnight sat morning", Window{Days: fri, From: 22 * h, To: 6 * h}, at(2026, 11, 28, 5, 59, time.UTC), true},
		{"midnight sat 06:00", Window{Days: fri, From: 22 * h, To: 6 * h}, at(2026, 11, 28, 6, 0, time.UTC), false},
		{"midnight fri morning", Window{Days: fri, From: 22 * h, To: 6 * h}, at(2026, 11, 27, 5, 0, time.UTC), false},
		{"midnight sat evening", Window{Days: fri, From: 22 * h, To: 6 * h}, at(2026, 11, 28, 23, 0, time.UTC), false},
		{"sun-mon boundary", Window{Days: WeekdaysOf(time.Sunday), From: 20 * h, To: 2 * h}, at(2026, 11, 23, 1, 0, time.UTC), true},
		{"weekday end", Window{Days: WeekdaysOf(time.Monday, time.Friday), From: 0, To: 24 * h}, at(2026, 11, 28, 0, 0, time.UTC), false},
		{"loc shifts day", Window{Days: fri, From: 0, To: 24 * h, Loc: berlin}, at(2026, 11, 27, 23, 30, time.UTC), false},
		{"loc shifts day 2", Window{Days: fri, From: 0, To: 24 * h, Loc: berlin}, at(2026, 11, 26, 23, 30, time.UTC), true},
		// 2026-03-29: Berlin skips 02:00-03:00 CET->CEST.
		{"dst spring 03:30 CEST", Window{From: 2 * h, To: 4 * h, Loc: berlin}, at(2026, 3, 29, 1, 30, time.UTC), true},
		{"dst spring 01:59 CET", Window{From: 2 * h, To: 4 * h, Loc: berlin}, at(2026, 3, 29, 0, 59, time.UTC), false},
		{"dst spring skipped hour", Window{From: 2 * h, To: 3 * h, Loc: berlin}, at(2026, 3, 29, 1, 0, time.UTC), false},
		{"dst spring 08:00 wall", Window{From: 8 * h, To: 9 * h, Loc: berlin}, at(2026, 3, 29, 6, 0, time.UTC), true},
		// 2026-10-25: 02:00-03:00 happens twice (CEST then CET).
		{"dst autumn first 02:30", Window{From: 2 * h, To: 3 * h, Loc: berlin}, at(2026, 10, 25, 0, 30, time.UTC), true},
		{"dst autumn second 02:30", Window{From: 2 * h, To: 3 * h, Loc: berlin}, at(2026, 10, 25, 1, 30, time.UTC), true},
		{"dst autumn 03:00 CET", Window{From: 2 * h, To: 3 * h, Loc: berlin}, at(2026, 10, 25, 2, 0, time.UTC), false},
	}
	for _, tt := range tests {
		if got := tt.w.Active(tt.t); got != tt.want {
			t.Errorf("%s: Active(%v) = %v, want %v", tt.name, tt.t, got, tt.want)
		}
	}
}
