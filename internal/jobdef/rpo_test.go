package jobdef

import (
	"errors"
	"testing"
	"time"
)

func TestParseRPO(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{"", 0, false},
		{"36h", 36 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"2d", 48 * time.Hour, false},
		{"1m", time.Minute, false},
		{"366d", MaxRPO, false},
		{"59s", 0, true},  // below MinRPO
		{"367d", 0, true}, // above MaxRPO
		{"0d", 0, true},
		{"-1h", 0, true},
		{"1.5d", 0, true},
		{"d", 0, true},
		{"daily", 0, true},
		{"10", 0, true},
	} {
		got, err := ParseRPO(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseRPO(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestValidateRPO(t *testing.T) {
	base := Definition{Repository: "r1", VMs: []VM{{Name: "vm1", Disks: []string{"/vm/vm1.img"}}}}
	for _, tc := range []struct {
		rpo string
		ok  bool
	}{{"", true}, {"26h", true}, {"7d", true}, {"30s", false}, {"soon", false}} {
		d := base
		d.RPO = tc.rpo
		err := d.ValidateKind(KindBackup)
		if tc.ok != (err == nil) {
			t.Errorf("rpo %q: %v", tc.rpo, err)
		}
		var fe *FieldError
		if err != nil && (!errors.As(err, &fe) || fe.Field != "definition.rpo" || !errors.Is(err, ErrInvalid)) {
			t.Errorf("rpo %q: error %v names no field definition.rpo or is not ErrInvalid", tc.rpo, err)
		}
	}
	raw, err := Decode([]byte(`{"vms":[{"name":"vm1","disks":["/vm/vm1.img"]}],"repository":"r1","rpo":"2d"}`))
	if err != nil || raw.RPO != "2d" {
		t.Fatalf("decode rpo: %+v, %v", raw, err)
	}
}

func TestDefaultRPO(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 17, 0, 0, time.UTC) // a Thursday
	schedules := map[string]string{
		"nightly": "daily 02:00", "chained": "after nightly", "twice": "after chained",
		"manual": "", "loop1": "after loop2", "loop2": "after loop1",
	}
	for _, tc := range []struct {
		schedule string
		want     time.Duration
	}{
		{"daily 02:00", 36 * time.Hour},
		{"0 * * * *", 2 * time.Hour},
		{"*/15 * * * *", 75 * time.Minute},
		{"0 2,8 * * *", 27 * time.Hour}, // gaps of 6 h and 18 h: the longest counts
		{"0 3 * * 0", 7*24*time.Hour + 84*time.Hour},
		{"0 1 * * 1-5", 3*24*time.Hour + 36*time.Hour}, // Friday to Monday
		{"0 0 1 * *", 31*24*time.Hour + 372*time.Hour}, // monthly: December's 31 days
		{"after nightly", 36 * time.Hour},
		{"after twice", 36 * time.Hour}, // a chain of chains
		{"after manual", 0},
		{"after loop1", 0},
		{"after nobody", 0},
		{"", 0},
		{"not a schedule", 0},
	} {
		if got := DefaultRPO(tc.schedule, schedules, now); got != tc.want {
			t.Errorf("DefaultRPO(%q) = %v, want %v", tc.schedule, got, tc.want)
		}
	}
}

func TestEffectiveRPO(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		rpo, schedule string
		want          time.Duration
		source        string
	}{
		{"12h", "daily 02:00", 12 * time.Hour, RPOExplicit},
		{"12h", "", 12 * time.Hour, RPOExplicit}, // an on-demand job may still have one
		{"", "daily 02:00", 36 * time.Hour, RPOSchedule},
		{"", "", 0, ""},
	} {
		got, src := EffectiveRPO(Definition{RPO: tc.rpo}, tc.schedule, nil, now)
		if got != tc.want || src != tc.source {
			t.Errorf("EffectiveRPO(%q, %q) = %v %q, want %v %q", tc.rpo, tc.schedule, got, src, tc.want, tc.source)
		}
	}
}
