package configdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testPaging pages through points (ties on the creation time broken by
// repository and ID), sessions (by ID) and jobs (by name, each with its
// newest run of its own kind), and filters by since.
func testPaging(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	t0 := clk.now().UTC().Truncate(time.Microsecond)
	var want []string
	for i := range 7 {
		created := t0.Add(-time.Duration(i/2) * time.Hour) // pairs share a time
		p := Point{ID: fmt.Sprintf("p%d", i), Repository: fmt.Sprintf("r%d", i%2), VM: "vm1", Created: created}
		if _, err := s.RecordPoint(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.ListPoints(ctx, PointFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		want = append(want, p.ID)
	}
	var got []string
	f := PointFilter{VM: "vm1", Limit: 3}
	for range 5 {
		page, err := s.ListPoints(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page {
			got = append(got, p.ID)
		}
		if len(page) < 3 {
			break
		}
		c, err := ParsePointCursor(page[len(page)-1].Cursor().String())
		if err != nil {
			t.Fatal(err)
		}
		f.After = &c
	}
	if strings.Join(got, ",") != strings.Join(want, ",") || len(got) != 7 {
		t.Errorf("points paged %v, listed %v", got, want)
	}
	if recent, err := s.ListPoints(ctx, PointFilter{Since: t0.Add(-time.Hour)}); err != nil || len(recent) != 4 {
		t.Errorf("points since an hour ago: %d, %v; want 4", len(recent), err)
	}
	for _, bad := range []string{"", "!!", "bm90IGEgY3Vyc29y"} {
		if _, err := ParsePointCursor(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("cursor %q: %v, want ErrInvalid", bad, err)
		}
	}

	// Jobs by name, each with its newest run of its kind.
	def := json.RawMessage(`{"vms":["vm1"],"repository":"r1"}`)
	for _, name := range []string{"c", "a", "b"} {
		if _, err := s.CreateJob(ctx, Job{Name: name, Definition: def, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []int64
	for _, run := range []struct{ job, kind string }{{"a", "backup"}, {"a", "backup"}, {"a", "restore"}, {"c", "backup"}} {
		clk.advance(time.Minute)
		se, err := s.CreateSession(ctx, run.job, run.kind)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, se.ID)
	}
	runs, err := s.ListJobRuns(ctx, "", 2)
	if err != nil || len(runs) != 2 || runs[0].Job.Name != "a" || runs[1].Job.Name != "b" {
		t.Fatalf("first page of jobs %+v, %v", runs, err)
	}
	if l := runs[0].Last; l == nil || l.ID != ids[1] || l.Kind != "backup" || l.State != StateRunning || l.JobName != "a" {
		t.Errorf("job a's newest run %+v, want session %d (a restore of its points is not a run)", l, ids[1])
	}
	if runs[1].Last != nil || string(runs[0].Job.Definition) == "" {
		t.Errorf("job b has no run, got %+v; job a %+v", runs[1].Last, runs[0].Job)
	}
	rest, err := s.ListJobRuns(ctx, "b", 0)
	if err != nil || len(rest) != 1 || rest[0].Job.Name != "c" || rest[0].Last == nil || rest[0].Last.ID != ids[3] {
		t.Errorf("jobs after b: %+v, %v", rest, err)
	}

	// Sessions before a cursor, and since a time.
	page, err := s.ListSessions(ctx, SessionFilter{Before: ids[2], Limit: 10})
	if err != nil || len(page) != 2 || page[0].ID != ids[1] || page[1].ID != ids[0] {
		t.Errorf("sessions before %d: %+v, %v", ids[2], page, err)
	}
	since, err := s.ListSessions(ctx, SessionFilter{Since: t0.Add(3 * time.Minute)})
	if err != nil || len(since) != 2 || since[0].ID != ids[3] {
		t.Errorf("sessions since +3m: %+v, %v", since, err)
	}
}
