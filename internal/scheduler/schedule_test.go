package scheduler

import (
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	after := mustTime(t, "2024-03-30T12:00:00+01:00")
	tests := []struct {
		spec string
		loc  *time.Location
		kind Kind
		dep  string
		want string // next after `after`; "" for none
	}{
		{"daily 02:00", berlin, KindDaily, "", "2024-03-31T03:00:00+02:00"}, // 02:00 skipped by DST
		{"daily at 23:15", berlin, KindDaily, "", "2024-03-30T23:15:00+01:00"},
		{"DAILY AT 7:05", nil, KindDaily, "", "2024-03-31T07:05:00Z"},
		{"daily 00:00", time.UTC, KindDaily, "", "2024-03-31T00:00:00Z"},
		{"0 22 * * SAT", berlin, KindCron, "", "2024-03-30T22:00:00+01:00"},
		{"@daily", berlin, KindCron, "", "2024-03-31T00:00:00+01:00"},
		{"after nightly-sql", berlin, KindAfter, "nightly-sql", ""},
		{"  after   file server copy ", nil, KindAfter, "file server copy", ""},
	}
	for _, tc := range tests {
		s, err := ParseSchedule(tc.spec, tc.loc)
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", tc.spec, err)
			continue
		}
		if s.Kind() != tc.kind || s.Dependency() != tc.dep || s.String() != strings.TrimSpace(tc.spec) {
			t.Errorf("%q: kind %v dep %q string %q", tc.spec, s.Kind(), s.Dependency(), s)
		}
		got := s.Next(after)
		if tc.want == "" {
			if !got.IsZero() {
				t.Errorf("%q: Next = %v, want none", tc.spec, got)
			}
			continue
		}
		if want := mustTime(t, tc.want); !got.Equal(want) {
			t.Errorf("%q: Next = %s, want %s", tc.spec, got.Format(time.RFC3339), tc.want)
		}
	}
}

func TestParseScheduleErrors(t *testing.T) {
	for _, spec := range []string{
		"", "   ", "after", "after   ", "daily", "daily 24:00", "daily 12:60", "daily 2:5",
		"daily at", "daily at 02:00 extra", "daily 02-00", "daily +2:00", "daily 02:+5",
		"daily 002:00", "weekly 02:00", "0 0 30 2 *", "0 25 * * *",
	} {
		if s, err := ParseSchedule(spec, nil); err == nil {
			t.Errorf("ParseSchedule(%q) = %v, want an error", spec, s)
		}
	}
}

func TestCheckChains(t *testing.T) {
	parse := func(spec string) *Schedule {
		s, err := ParseSchedule(spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ok := map[string]*Schedule{
		"a": parse("daily 01:00"), "b": parse("after a"), "c": parse("after b"),
		"d": parse("after b"), "e": parse("after elsewhere"),
	}
	if err := CheckChains(ok); err != nil {
		t.Fatalf("CheckChains: %v", err)
	}
	cyclic := map[string]*Schedule{
		"a": parse("after c"), "b": parse("after a"), "c": parse("after b"), "x": parse("after a"),
	}
	err := CheckChains(cyclic)
	if err == nil || !strings.Contains(err.Error(), "a → c → b → a") {
		t.Fatalf("CheckChains = %v", err)
	}
	self := map[string]*Schedule{"s": parse("after s")}
	if err := CheckChains(self); err == nil || !strings.Contains(err.Error(), "s → s") {
		t.Fatalf("CheckChains(self) = %v", err)
	}
}
