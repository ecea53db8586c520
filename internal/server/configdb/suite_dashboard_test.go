package configdb

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// testDashboard checks the dashboard's reads: session starts in a window
// (both edges included), the active sessions with their tasks, the newest
// good point per job and VM, and the repositories' daily capacity samples.
func testDashboard(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	def := json.RawMessage(`{"vms":["vm1"],"repository":"r1"}`)
	if _, err := s.CreateJob(ctx, Job{Name: "j1", Definition: def, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	t0 := clk.now().UTC().Truncate(time.Microsecond)
	at := func(d time.Duration, st State) Session {
		t.Helper()
		clk.Set(t0.Add(d))
		se, err := s.CreateSession(ctx, "j1", "backup")
		if err != nil {
			t.Fatal(err)
		}
		if st != StateRunning {
			if se, err = s.UpdateSession(ctx, se.ID, st, nil); err != nil {
				t.Fatal(err)
			}
		}
		return se
	}
	at(-time.Microsecond, StateFailed) // just before the window
	at(0, StateSuccess)                // its first instant
	at(time.Hour, StateWarning)
	running := at(2*time.Hour, StateRunning)
	queued := at(3*time.Hour, StateQueued)
	at(24*time.Hour, StateCancelled) // its last instant
	at(24*time.Hour+time.Microsecond, StateSuccess)
	starts, err := s.SessionStarts(ctx, t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []SessionStart{{StateSuccess, t0}, {StateWarning, t0.Add(time.Hour)}, {StateRunning, t0.Add(2 * time.Hour)},
		{StateQueued, t0.Add(3 * time.Hour)}, {StateCancelled, t0.Add(24 * time.Hour)}}
	if !reflect.DeepEqual(starts, want) {
		t.Errorf("session starts\n got %v\nwant %v", starts, want)
	}

	// Active sessions and their tasks, in two queries.
	for _, se := range []Session{running, queued} {
		for _, disk := range []string{"d0", "d1"} {
			if _, err := s.CreateTask(ctx, Task{SessionID: se.ID, VM: "vm1", Disk: disk, BytesTotal: 100}); err != nil {
				t.Fatal(err)
			}
		}
	}
	active, tasks, err := s.ActiveSessionTasks(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(active) != 2 || active[0].ID != queued.ID || active[1].ID != running.ID {
		t.Fatalf("active sessions %+v, want %d then %d", active, queued.ID, running.ID)
	}
	if len(tasks) != 2 || len(tasks[running.ID]) != 2 || tasks[running.ID][1].Disk != "d1" || tasks[queued.ID][0].SessionID != queued.ID {
		t.Errorf("active tasks %+v", tasks)
	}
	if one, _, err := s.ActiveSessionTasks(ctx, 1); err != nil || len(one) != 1 || one[0].ID != queued.ID {
		t.Errorf("active sessions limit 1: %+v, %v", one, err)
	}

	// The newest good point per job and VM: an infected point does not count.
	clk.Set(t0)
	for _, p := range []Point{
		{ID: "a", Repository: "r1", VM: "vm1", JobName: "j1", Created: t0.Add(-3 * time.Hour)},
		{ID: "b", Repository: "r1", VM: "vm1", JobName: "j1", Created: t0.Add(-2 * time.Hour)},
		{ID: "c", Repository: "r1", VM: "vm1", JobName: "j1", Created: t0.Add(-1 * time.Hour)}, // infected below
		{ID: "d", Repository: "r1", VM: "vm2", JobName: "j1", Created: t0.Add(-5 * time.Hour)},
		{ID: "e", Repository: "r1", VM: "vm1", JobName: "j2", Created: t0.Add(-4 * time.Hour)},
		{ID: "f", Repository: "r1", VM: "vm1", Created: t0}, // outside any job
	} {
		if _, err := s.RecordPoint(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SetPointScan(ctx, "r1", "c", PointScan{Engine: "clamscan", Result: "infected", Findings: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPointScan(ctx, "r1", "b", PointScan{Engine: "clamscan", Result: "clean"}); err != nil {
		t.Fatal(err)
	}
	newest, err := s.NewestGoodPoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantPoints := []VMPoint{{"j1", "vm1", t0.Add(-2 * time.Hour)}, {"j1", "vm2", t0.Add(-5 * time.Hour)}, {"j2", "vm1", t0.Add(-4 * time.Hour)}}
	if !reflect.DeepEqual(newest, wantPoints) {
		t.Errorf("newest good points\n got %v\nwant %v", newest, wantPoints)
	}

	// Capacity samples: one per repository and UTC day, the last one kept.
	day := time.Date(2031, 5, 6, 23, 0, 0, 0, time.UTC)
	for i, sm := range []struct {
		at         time.Time
		size, free int64
	}{{day.Add(-48 * time.Hour), 1000, 900}, {day, 1000, 800}, {day.Add(30 * time.Minute), 1000, 700}, {day.Add(2 * time.Hour), 1000, 600}} {
		clk.Set(sm.at)
		if err := s.RecordRepositorySample(ctx, "r1", StorageStatus{SizeBytes: sm.size, FreeBytes: sm.free}); err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
	}
	if err := s.RecordRepositorySample(ctx, "r1", StorageStatus{}); err == nil {
		t.Error("a sample of no size was kept")
	}
	samples, err := s.RepositorySamples(ctx, day.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	wantSamples := []RepositorySample{{"r1", "2031-05-06", 1000, 700}, {"r1", "2031-05-07", 1000, 600}}
	if !reflect.DeepEqual(samples, wantSamples) {
		t.Errorf("samples\n got %v\nwant %v", samples, wantSamples)
	}
	if all, err := s.RepositorySamples(ctx, day.Add(-48*time.Hour)); err != nil || len(all) != 3 {
		t.Errorf("samples from two days back: %v, %v", all, err)
	}
}

func TestAgentStorage(t *testing.T) {
	for _, tc := range []struct {
		caps string
		want StorageStatus
		ok   bool
	}{
		{`{"storage":{"filesystem_size_bytes":10,"filesystem_free_bytes":4}}`, StorageStatus{SizeBytes: 10, FreeBytes: 4}, true},
		{`{"storage":{"error":"object storage: no capacity to report"}}`, StorageStatus{Error: "object storage: no capacity to report"}, true},
		{`{"transports":["nbd"]}`, StorageStatus{}, false},
		{`{}`, StorageStatus{}, false},
		{`not json`, StorageStatus{}, false},
		{``, StorageStatus{}, false},
	} {
		got, ok := Agent{Capabilities: json.RawMessage(tc.caps)}.Storage()
		if got != tc.want || ok != tc.ok {
			t.Errorf("Storage(%s) = %+v, %v; want %+v, %v", tc.caps, got, ok, tc.want, tc.ok)
		}
	}
}

// testNewestPoints: newest_points follows deletions, and the dashboard
// migration fills it from the points an older schema holds.
func testNewestPoints(t *testing.T, b backend) {
	ctx := context.Background()
	clk := newClock()
	o := openOldSchema(ctx, t, b, "dashboard", clk)
	dsn, db, old := o.DSN, o.DB, o.Store
	t0 := clk.now().UTC().Truncate(time.Microsecond)
	insert := func(id, job, vm, scan string, age time.Duration) {
		t.Helper()
		if _, err := old.exec(ctx, db, `INSERT INTO points (repository, id, vm, job_name, created_at, scan_result)
			VALUES ('r1', ?, ?, ?, ?, ?)`, id, vm, job, t0.Add(-age), scan); err != nil {
			t.Fatal(err)
		}
	}
	insert("a", "j1", "vm1", "", 3*time.Hour)
	insert("b", "j1", "vm1", "clean", 2*time.Hour)
	insert("c", "j1", "vm1", "infected", time.Hour)
	insert("d", "j1", "vm2", "infected", time.Hour)
	insert("e", "", "vm3", "", time.Hour)
	db.Close()

	s, err := Open(ctx, dsn, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(when string, want []VMPoint) {
		t.Helper()
		got, err := s.NewestGoodPoints(ctx)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: newest points %v (%v), want %v", when, got, err, want)
		}
	}
	check("after the migration", []VMPoint{{"j1", "vm1", t0.Add(-2 * time.Hour)}})
	if err := s.DeletePoint(ctx, "r1", "b"); err != nil {
		t.Fatal(err)
	}
	check("newest deleted", []VMPoint{{"j1", "vm1", t0.Add(-3 * time.Hour)}})
	if err := s.SetPointScan(ctx, "r1", "c", PointScan{Engine: "clamscan", Result: "clean"}); err != nil {
		t.Fatal(err)
	}
	check("infected point rescanned clean", []VMPoint{{"j1", "vm1", t0.Add(-time.Hour)}})
	for _, id := range []string{"a", "c"} {
		if err := s.DeletePoint(ctx, "r1", id); err != nil {
			t.Fatal(err)
		}
	}
	check("all deleted", nil)
}
