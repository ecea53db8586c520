package repo

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func policyPoints(vm string, times ...string) []*Manifest {
	var ms []*Manifest
	for i, s := range times {
		tm, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			panic(err)
		}
		ms = append(ms, &Manifest{ID: fmt.Sprintf("%s%015d", vm[:1], i), VM: vm, Time: tm})
	}
	return ms
}

// kept renders the decisions as "vm time: reasons" for every kept point,
// in result order.
func kept(ds []Decision) []string {
	out := []string{}
	for _, d := range ds {
		if d.Keep != (len(d.Reasons) > 0) {
			panic(fmt.Sprintf("decision %v: keep %v with reasons %v", d.Point.ID, d.Keep, d.Reasons))
		}
		if d.Keep {
			out = append(out, d.Point.VM+" "+d.Point.Time.UTC().Format("2006-01-02 15:04")+": "+d.String())
		}
	}
	return out
}

func TestApplyPolicy(t *testing.T) {
	// Tue 2026-03-10 is in ISO week 11 (Mar 9-15), Sun 03-08 in week 10,
	// Sun 03-01 in week 9.
	a := policyPoints("a",
		"2026-03-10 06:00", "2026-03-10 12:00", "2026-03-10 18:00",
		"2026-03-09 08:00", "2026-03-09 20:00",
		"2026-03-08 22:00",
		"2026-03-01 10:00",
		"2026-02-15 10:00",
		"2026-01-20 10:00",
		"2025-12-31 23:00",
		"2025-06-01 10:00",
		"2024-07-01 10:00",
	)
	plus2 := time.FixedZone("UTC+2", 2*3600)
	tests := []struct {
		name string
		p    Policy
		loc  *time.Location
		want []string
	}{
		{"empty", Policy{}, time.UTC, []string{}},
		{"last 2", Policy{Last: 2}, time.UTC, []string{"a 2026-03-10 18:00: last", "a 2026-03-10 12:00: last"}},
		{"daily 3", Policy{Daily: 3}, time.UTC, []string{
			"a 2026-03-10 18:00: daily", "a 2026-03-09 20:00: daily", "a 2026-03-08 22:00: daily"}},
		{"weekly 3", Policy{Weekly: 3}, time.UTC, []string{
			"a 2026-03-10 18:00: weekly", "a 2026-03-08 22:00: weekly", "a 2026-03-01 10:00: weekly"}},
		{"monthly 3", Policy{Monthly: 3}, time.UTC, []string{
			"a 2026-03-10 18:00: monthly", "a 2026-02-15 10:00: monthly", "a 2026-01-20 10:00: monthly"}},
		{"yearly 5", Policy{Yearly: 5}, time.UTC, []string{
			"a 2026-03-10 18:00: yearly", "a 2025-12-31 23:00: yearly", "a 2024-07-01 10:00: yearly"}},
		// In UTC+2 the 2025-12-31 23:00 UTC point falls on 2026-01-01.
		{"yearly in UTC+2", Policy{Yearly: 2}, plus2, []string{
			"a 2026-03-10 18:00: yearly", "a 2025-06-01 10:00: yearly"}},
		// In UTC+2 03-08 22:00 UTC is 03-09 00:00, so local 03-08 has no point.
		{"daily in UTC+2", Policy{Daily: 3}, plus2, []string{
			"a 2026-03-10 18:00: daily", "a 2026-03-09 20:00: daily", "a 2026-03-01 10:00: daily"}},
		{"combination", Policy{Last: 1, Daily: 2, Monthly: 2}, time.UTC, []string{
			"a 2026-03-10 18:00: last, daily, monthly", "a 2026-03-09 20:00: daily", "a 2026-02-15 10:00: monthly"}},
		{"overlapping rules", Policy{Last: 3, Daily: 2, Weekly: 2, Yearly: 2}, time.UTC, []string{
			"a 2026-03-10 18:00: last, daily, weekly, yearly", "a 2026-03-10 12:00: last", "a 2026-03-10 06:00: last",
			"a 2026-03-09 20:00: daily", "a 2026-03-08 22:00: weekly", "a 2025-12-31 23:00: yearly"}},
		{"more periods than points", Policy{Monthly: 100}, time.UTC, []string{
			"a 2026-03-10 18:00: monthly", "a 2026-02-15 10:00: monthly", "a 2026-01-20 10:00: monthly",
			"a 2025-12-31 23:00: monthly", "a 2025-06-01 10:00: monthly", "a 2024-07-01 10:00: monthly"}},
		{"negative counts", Policy{Last: -1, Daily: -5}, time.UTC, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds := ApplyPolicy(append([]*Manifest(nil), a...), tc.p, tc.loc)
			if len(ds) != len(a) {
				t.Fatalf("%d decisions for %d points", len(ds), len(a))
			}
			for i := 1; i < len(ds); i++ {
				if ds[i].Point.Time.After(ds[i-1].Point.Time) {
					t.Fatalf("decisions not newest first at %d", i)
				}
			}
			if got := kept(ds); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("kept:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if tc.p.Empty() != (len(tc.want) == 0) {
				t.Errorf("Empty() = %v", tc.p.Empty())
			}
		})
	}
}

func TestApplyPolicyPerVM(t *testing.T) {
	b := policyPoints("b", "2026-03-10 19:00", "2026-03-09 10:00", "2026-02-01 10:00")
	a := policyPoints("a", "2026-03-10 18:00", "2026-03-10 17:00", "2026-03-08 10:00")
	mixed := []*Manifest{b[1], a[2], b[0], a[0], b[2], a[1]}
	ds := ApplyPolicy(mixed, Policy{Last: 1, Daily: 2}, time.UTC)
	var order []string
	for _, d := range ds {
		order = append(order, d.Point.ID)
	}
	wantOrder := []string{a[0].ID, a[1].ID, a[2].ID, b[0].ID, b[1].ID, b[2].ID}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Errorf("order %v, want %v (by VM, newest first)", order, wantOrder)
	}
	want := []string{
		"a 2026-03-10 18:00: last, daily", "a 2026-03-08 10:00: daily",
		"b 2026-03-10 19:00: last, daily", "b 2026-03-09 10:00: daily",
	}
	if got := kept(ds); !reflect.DeepEqual(got, want) {
		t.Errorf("kept %q, want %q", got, want)
	}
	if ds := ApplyPolicy(nil, Policy{Last: 1}, time.UTC); len(ds) != 0 {
		t.Errorf("no points: %v", ds)
	}
}
