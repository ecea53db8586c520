package repo

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Policy is a GFS retention policy. Each count keeps the newest point of
// that many distinct periods (days, ISO weeks, months, years); Last keeps
// that many newest points. A point kept by any rule is kept. The policy is
// applied to each VM's points separately. Standalone `forget` builds it
// from --keep-* flags; a server job stores it as its "retention" (the JSON
// names below).
type Policy struct {
	Last    int `json:"keep_last,omitempty"`
	Daily   int `json:"keep_daily,omitempty"`
	Weekly  int `json:"keep_weekly,omitempty"`
	Monthly int `json:"keep_monthly,omitempty"`
	Yearly  int `json:"keep_yearly,omitempty"`
}

// Empty reports whether the policy keeps nothing (forget refuses it).
func (p Policy) Empty() bool {
	return p.Last <= 0 && p.Daily <= 0 && p.Weekly <= 0 && p.Monthly <= 0 && p.Yearly <= 0
}

// Check refuses negative counts; the error names the JSON field.
func (p Policy) Check() error {
	for _, c := range []struct {
		name string
		n    int
	}{{"keep_last", p.Last}, {"keep_daily", p.Daily}, {"keep_weekly", p.Weekly}, {"keep_monthly", p.Monthly}, {"keep_yearly", p.Yearly}} {
		if c.n < 0 {
			return fmt.Errorf("%s: negative (%d)", c.name, c.n)
		}
	}
	return nil
}

// String renders the policy, e.g. "keep last 7, daily 14, monthly 12".
func (p Policy) String() string {
	var parts []string
	for _, c := range []struct {
		name string
		n    int
	}{{"last", p.Last}, {"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}, {"yearly", p.Yearly}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c.name, c.n))
		}
	}
	if len(parts) == 0 {
		return "keep all"
	}
	return "keep " + strings.Join(parts, ", ")
}

// Decision is the verdict on one point.
type Decision struct {
	Point   *Manifest
	Keep    bool
	Reasons []string
}

// rule keeps the newest point of each of the first count distinct keys.
type rule struct {
	name  string
	count int
	key   func(i int, t time.Time) string // i: position, newest first
}

// ApplyPolicy decides, per VM, which points to keep. Times are bucketed in
// loc. The result is ordered by VM, newest first.
func ApplyPolicy(points []*Manifest, p Policy, loc *time.Location) []Decision {
	byVM := map[string][]*Manifest{}
	var vms []string
	for _, m := range points {
		if _, ok := byVM[m.VM]; !ok {
			vms = append(vms, m.VM)
		}
		byVM[m.VM] = append(byVM[m.VM], m)
	}
	sort.Strings(vms)
	var out []Decision
	for _, vm := range vms {
		out = append(out, applyOne(byVM[vm], p, loc)...)
	}
	return out
}

func applyOne(ms []*Manifest, p Policy, loc *time.Location) []Decision {
	sort.SliceStable(ms, func(i, j int) bool { return ms[i].Time.After(ms[j].Time) })
	rules := []rule{
		{"last", p.Last, func(i int, _ time.Time) string { return fmt.Sprint(i) }},
		{"daily", p.Daily, func(_ int, t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", p.Weekly, func(_ int, t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-%02d", y, w) }},
		{"monthly", p.Monthly, func(_ int, t time.Time) string { return t.Format("2006-01") }},
		{"yearly", p.Yearly, func(_ int, t time.Time) string { return t.Format("2006") }},
	}
	left := make([]int, len(rules))
	last := make([]string, len(rules))
	for i, r := range rules {
		left[i] = r.count
	}
	out := make([]Decision, 0, len(ms))
	for i, m := range ms {
		d := Decision{Point: m}
		t := m.Time.In(loc)
		for k, r := range rules {
			key := r.key(i, t)
			if left[k] > 0 && key != last[k] {
				last[k] = key
				left[k]--
				d.Keep = true
				d.Reasons = append(d.Reasons, r.name)
			}
		}
		out = append(out, d)
	}
	return out
}

// String renders the reasons, e.g. "daily, monthly".
func (d Decision) String() string { return strings.Join(d.Reasons, ", ") }
