package configdb

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// testMigrateFromV1 builds a database at schema version 1 holding a task,
// then opens it normally: migration 2 adds points and gives old tasks the
// new columns' defaults.
func testMigrateFromV1(t *testing.T, b backend) {
	ctx := context.Background()
	o := openOldSchema(ctx, t, b, "execution", newClock())
	dsn, db, old := o.DSN, o.DB, o.Store
	se, err := old.CreateSession(ctx, "", "backup")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.exec(ctx, db, `INSERT INTO tasks (session_id, vm, disk, state, queued_at, error)
		VALUES (?, ?, ?, ?, ?, ?)`, se.ID, "web1", "vda", string(StateFailed), old.timestamp(), "old"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != LatestSchemaVersion() {
		t.Fatalf("schema version %d %v", v, err)
	}
	tasks, err := s.ListTasks(ctx, se.ID)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("ListTasks after upgrade: %+v %v", tasks, err)
	}
	if tk := tasks[0]; tk.Error != "old" || tk.Attempt != 0 || tk.PointID != "" || tk.Warnings != nil ||
		tk.SourceNanos|tk.ProxyNanos|tk.NetworkNanos|tk.TargetNanos != 0 {
		t.Fatalf("old task after upgrade: %+v", tk)
	}
	if ps, err := s.ListPoints(ctx, PointFilter{}); err != nil || len(ps) != 0 {
		t.Fatalf("ListPoints after upgrade: %+v %v", ps, err)
	}
}

func testPoints(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	if _, err := s.CreateJob(ctx, Job{Name: "nightly", Definition: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	se, err := s.CreateSession(ctx, "nightly", "backup")
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2031, 5, 1, 2, 0, 0, 123456789, time.UTC)
	disks := json.RawMessage(`[{"disk":"vda","bytes":1073741824}]`)

	for _, tc := range []struct {
		name string
		p    Point
		want error
	}{
		{"no ID", Point{Repository: "r1", VM: "web1"}, ErrInvalid},
		{"no repository", Point{ID: "x", VM: "web1"}, ErrInvalid},
		{"no VM", Point{ID: "x", Repository: "r1"}, ErrInvalid},
		{"bad disks JSON", Point{ID: "x", Repository: "r1", VM: "web1", Disks: json.RawMessage(`[`)}, ErrInvalid},
		{"negative bytes", Point{ID: "x", Repository: "r1", VM: "web1", BytesStored: -1}, ErrInvalid},
		{"missing session", Point{ID: "x", Repository: "r1", VM: "web1", SessionID: 9999}, ErrConflict},
	} {
		if _, err := s.RecordPoint(ctx, tc.p); !errors.Is(err, tc.want) {
			t.Errorf("RecordPoint(%s): %v, want %v", tc.name, err, tc.want)
		}
	}

	in := Point{ID: "p-1", Repository: "r1", VM: "web1", JobName: "nightly", SessionID: se.ID,
		Created: base, Disks: disks, BytesTotal: 1 << 30, BytesStored: 1 << 20}
	p1, err := s.RecordPoint(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.Created = base.Truncate(time.Microsecond)
	if !reflect.DeepEqual(p1, want) {
		t.Fatalf("RecordPoint:\n got %+v\nwant %+v", p1, want)
	}
	// Idempotent: the same (repository, ID) again returns the stored row.
	again := in
	again.VM, again.BytesStored, again.Created = "other", 7, base.Add(time.Hour)
	if got, err := s.RecordPoint(ctx, again); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("RecordPoint again: %+v %v, want %+v", got, err, want)
	}
	if got, err := s.GetPoint(ctx, "p-1"); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("GetPoint: %+v %v", got, err)
	}
	if _, err := s.GetPoint(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetPoint(nope): %v, want ErrNotFound", err)
	}
	// Defaults: the store's clock, an empty disk list, no session.
	bare, err := s.RecordPoint(ctx, Point{ID: "p-bare", Repository: "r1", VM: "db1"})
	if err != nil || !bare.Created.Equal(clk.now().Truncate(time.Microsecond)) || string(bare.Disks) != "[]" ||
		bare.SessionID != 0 || bare.JobName != "" {
		t.Fatalf("RecordPoint with defaults: %+v %v", bare, err)
	}
	if err := s.DeletePoint(ctx, "r1", "p-bare"); err != nil {
		t.Fatal(err)
	}

	// More points: web1 in r1 and r2, db1 in r2, one ad-hoc.
	for i, p := range []Point{
		{ID: "p-2", Repository: "r1", VM: "web1", JobName: "nightly", SessionID: se.ID},
		{ID: "p-1", Repository: "r2", VM: "web1", JobName: "weekly"}, // same ID, other repository
		{ID: "p-3", Repository: "r2", VM: "db1", JobName: "nightly", SessionID: se.ID},
		{ID: "p-4", Repository: "r1", VM: "web1"},
	} {
		p.Created = base.Add(time.Duration(i+1) * time.Hour)
		if _, err := s.RecordPoint(ctx, p); err != nil {
			t.Fatalf("RecordPoint %s/%s: %v", p.Repository, p.ID, err)
		}
	}
	_, err = s.GetPoint(ctx, "p-1")
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "r1, r2") {
		t.Fatalf("GetPoint of an ID in two repositories: %v, want ErrConflict naming r1, r2", err)
	}

	for _, tc := range []struct {
		name string
		f    PointFilter
		want []string // repository/id, newest first
	}{
		{"all", PointFilter{}, []string{"r1/p-4", "r2/p-3", "r2/p-1", "r1/p-2", "r1/p-1"}},
		{"vm", PointFilter{VM: "web1"}, []string{"r1/p-4", "r2/p-1", "r1/p-2", "r1/p-1"}},
		{"job", PointFilter{JobName: "nightly"}, []string{"r2/p-3", "r1/p-2", "r1/p-1"}},
		{"repository", PointFilter{Repository: "r2"}, []string{"r2/p-3", "r2/p-1"}},
		{"vm and repository", PointFilter{VM: "web1", Repository: "r1"}, []string{"r1/p-4", "r1/p-2", "r1/p-1"}},
		{"vm, job, repository", PointFilter{VM: "web1", JobName: "nightly", Repository: "r1"}, []string{"r1/p-2", "r1/p-1"}},
		{"limit", PointFilter{VM: "web1", Limit: 2}, []string{"r1/p-4", "r2/p-1"}},
		{"no match", PointFilter{VM: "nope"}, nil},
	} {
		ps, err := s.ListPoints(ctx, tc.f)
		if err != nil {
			t.Errorf("ListPoints(%s): %v", tc.name, err)
			continue
		}
		var got []string
		for _, p := range ps {
			got = append(got, p.Repository+"/"+p.ID)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ListPoints(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}

	testResolvePoint(t, s)

	if err := s.DeletePoint(ctx, "r2", "p-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePoint(ctx, "r2", "p-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("DeletePoint twice: %v, want ErrNotFound", err)
	}
	if got, err := s.GetPoint(ctx, "p-1"); err != nil || got.Repository != "r1" {
		t.Fatalf("GetPoint once unambiguous: %+v %v", got, err)
	}

	// Deleting the session (history retention) keeps its points, unlinked.
	if _, err := s.UpdateSession(ctx, se.ID, StateSuccess, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteSessionsBefore(ctx, clk.now().Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteSessionsBefore: %d %v", n, err)
	}
	ps, err := s.ListPoints(ctx, PointFilter{})
	if err != nil || len(ps) != 4 {
		t.Fatalf("points after session delete: %+v %v", ps, err)
	}
	for _, p := range ps {
		if p.SessionID != 0 {
			t.Errorf("point %s/%s still refers to deleted session %d", p.Repository, p.ID, p.SessionID)
		}
	}
	if got, _ := s.GetPoint(ctx, "p-1"); got.JobName != "nightly" || !reflect.DeepEqual(got.Disks, disks) {
		t.Fatalf("point after session delete: %+v", got)
	}
}

func testTaskFields(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	se, err := s.CreateSession(ctx, "", "backup")
	if err != nil {
		t.Fatal(err)
	}
	task, err := s.CreateTask(ctx, Task{SessionID: se.ID, VM: "web1", Disk: "vda", Attempt: 1, PointID: "p-9",
		Warnings: []string{"changed block tracking is off: full read"}, SourceNanos: 5, BytesRead: 5})
	if err != nil {
		t.Fatal(err)
	}
	if task.Attempt != 1 || task.PointID != "p-9" || task.SourceNanos != 0 || task.BytesRead != 0 ||
		!reflect.DeepEqual(task.Warnings, []string{"changed block tracking is off: full read"}) {
		t.Fatalf("CreateTask new fields: %+v", task)
	}
	if _, err := s.CreateTask(ctx, Task{SessionID: se.ID, VM: "web1", Disk: "vdb", Attempt: -1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("CreateTask with a negative attempt: %v", err)
	}
	if fresh, err := s.CreateTask(ctx, Task{SessionID: se.ID, VM: "web1", Disk: "vdb"}); err != nil ||
		fresh.Warnings != nil || fresh.Attempt != 0 || fresh.PointID != "" {
		t.Fatalf("CreateTask without new fields: %+v %v", fresh, err)
	}

	clk.advance(time.Second)
	task.State, task.Proxy, task.Attempt, task.PointID = StateWarning, "p1", 2, "p-10"
	task.SourceNanos, task.ProxyNanos, task.NetworkNanos, task.TargetNanos = 1, 2_000_000_000, 3<<40, 4
	task.Warnings = []string{"slow read", "", "agent said:\nline two\r\nline three", "  "}
	got, err := s.UpdateTask(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	want := task
	want.Started, want.Ended = got.Started, got.Ended
	want.Warnings = []string{"slow read", "agent said: line two line three"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("UpdateTask:\n got %+v\nwant %+v", got, want)
	}
	if byID, err := s.GetTask(ctx, task.ID); err != nil || !reflect.DeepEqual(byID, got) {
		t.Fatalf("GetTask: %+v %v, want %+v", byID, err, got)
	}
	if list, err := s.ListTasks(ctx, se.ID); err != nil || len(list) != 2 || !reflect.DeepEqual(list[0], got) {
		t.Fatalf("ListTasks: %+v %v", list, err)
	}
	if _, err := s.GetTask(ctx, 9999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetTask(9999): %v, want ErrNotFound", err)
	}
	for _, bad := range []func(*Task){
		func(t *Task) { t.Attempt = -1 },
		func(t *Task) { t.NetworkNanos = -1 },
		func(t *Task) { t.BytesWritten = -1 },
	} {
		tk := got
		bad(&tk)
		if _, err := s.UpdateTask(ctx, tk); !errors.Is(err, ErrInvalid) {
			t.Fatalf("UpdateTask with a negative number: %v", err)
		}
	}
	// Clearing warnings stores none.
	got.Warnings = nil
	if got, err = s.UpdateTask(ctx, got); err != nil || got.Warnings != nil {
		t.Fatalf("UpdateTask clearing warnings: %+v %v", got, err)
	}
}

// testRequeue walks a task through a proxy failure and a retry: a requeued
// task keeps its first start time and has no end time until terminal again.
func testRequeue(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	se, err := s.CreateSession(ctx, "", "backup")
	if err != nil {
		t.Fatal(err)
	}
	task, err := s.CreateTask(ctx, Task{SessionID: se.ID, VM: "web1", Disk: "vda"})
	if err != nil {
		t.Fatal(err)
	}
	var firstStart time.Time
	for i, step := range []struct {
		state     State
		attempt   int
		errText   string
		wantEnded bool
	}{
		{StateRunning, 0, "", false},
		{StateQueued, 1, "proxy p1 lost", false}, // requeued after a proxy failure
		{StateRunning, 1, "", false},
		{StateFailed, 1, "repository full", true},
		{StateQueued, 2, "", false}, // requeued after a terminal state: end time cleared
		{StateRunning, 2, "", false},
		{StateSuccess, 2, "", true},
	} {
		clk.advance(time.Minute)
		task.State, task.Attempt, task.Error = step.state, step.attempt, step.errText
		if task, err = s.UpdateTask(ctx, task); err != nil {
			t.Fatalf("step %d (%s): %v", i, step.state, err)
		}
		if i == 0 {
			firstStart = task.Started
			if !firstStart.Equal(clk.now().Truncate(time.Microsecond)) {
				t.Fatalf("first start %v, want %v", firstStart, clk.now())
			}
		}
		if !task.Started.Equal(firstStart) {
			t.Fatalf("step %d (%s): started %v, want the first start %v", i, step.state, task.Started, firstStart)
		}
		if task.Ended.IsZero() == step.wantEnded {
			t.Fatalf("step %d (%s): ended %v, want set: %v", i, step.state, task.Ended, step.wantEnded)
		}
		if step.wantEnded && !task.Ended.Equal(clk.now().Truncate(time.Microsecond)) {
			t.Fatalf("step %d (%s): ended %v, want now %v", i, step.state, task.Ended, clk.now())
		}
		if task.Attempt != step.attempt || task.Error != step.errText {
			t.Fatalf("step %d (%s): %+v", i, step.state, task)
		}
	}
}

func testFailUnfinished(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	if _, err := s.FailUnfinished(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("FailUnfinished without a reason: %v", err)
	}
	newSession := func(st State, result string) Session {
		t.Helper()
		se, err := s.CreateSession(ctx, "", "backup")
		if err != nil {
			t.Fatal(err)
		}
		var res json.RawMessage
		if result != "" {
			res = json.RawMessage(result)
		}
		if se, err = s.UpdateSession(ctx, se.ID, st, res); err != nil {
			t.Fatal(err)
		}
		return se
	}
	newTask := func(se Session, disk string, st State, errText string) Task {
		t.Helper()
		tk, err := s.CreateTask(ctx, Task{SessionID: se.ID, VM: "web1", Disk: disk})
		if err != nil {
			t.Fatal(err)
		}
		tk.State, tk.Error = st, errText
		if tk, err = s.UpdateTask(ctx, tk); err != nil {
			t.Fatal(err)
		}
		return tk
	}
	running := newSession(StateRunning, "")
	withResult := newSession(StateRunning, `{"vms":2}`)
	queued := newSession(StateQueued, "")
	resumed := newSession(StateRunning, "") // the server runs it again: kept
	resumed2 := newSession(StateQueued, "") // kept too
	done := newSession(StateSuccess, `{"vms":1}`)
	doneEnded := done.Ended

	tRunning := newTask(running, "vda", StateRunning, "")
	tQueuedErr := newTask(running, "vdb", StateQueued, "proxy p1 lost")
	tSuccess := newTask(running, "vdc", StateSuccess, "")
	tQueued := newTask(queued, "vda", StateQueued, "")
	tWithResult := newTask(withResult, "vda", StateRunning, "")
	tStray := newTask(done, "vda", StateRunning, "") // a running task of a finished session
	tResumed := newTask(resumed, "vda", StateRunning, "")
	successEnded := tSuccess.Ended

	clk.advance(time.Hour)
	now := clk.now().Truncate(time.Microsecond)
	const reason = "server restarted"
	n, err := s.FailUnfinished(ctx, reason, resumed.ID, resumed2.ID)
	if err != nil || n != 3 {
		t.Fatalf("FailUnfinished: %d %v, want 3", n, err)
	}

	for _, tc := range []struct {
		name   string
		id     int64
		state  State
		ended  time.Time
		result string
	}{
		{"running", running.ID, StateFailed, now, `{"error":"server restarted"}`},
		{"running with result", withResult.ID, StateFailed, now, `{"vms":2}`},
		{"queued", queued.ID, StateFailed, now, `{"error":"server restarted"}`},
		{"finished", done.ID, StateSuccess, doneEnded, `{"vms":1}`},
		{"kept", resumed.ID, StateRunning, time.Time{}, ``},
		{"kept queued", resumed2.ID, StateQueued, time.Time{}, ``},
	} {
		se, err := s.GetSession(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if se.State != tc.state || !se.Ended.Equal(tc.ended) || string(se.Result) != tc.result {
			t.Errorf("session %s: %s ended %v result %s; want %s, %v, %s",
				tc.name, se.State, se.Ended, se.Result, tc.state, tc.ended, tc.result)
		}
	}
	for _, tc := range []struct {
		name    string
		id      int64
		state   State
		ended   time.Time
		errText string
	}{
		{"running", tRunning.ID, StateFailed, now, reason},
		{"queued with an error", tQueuedErr.ID, StateFailed, now, "proxy p1 lost"},
		{"success", tSuccess.ID, StateSuccess, successEnded, ""},
		{"queued", tQueued.ID, StateFailed, now, reason},
		{"of a session with a result", tWithResult.ID, StateFailed, now, reason},
		{"of a finished session", tStray.ID, StateFailed, now, reason},
		{"of a kept session", tResumed.ID, StateRunning, time.Time{}, ""},
	} {
		tk, err := s.GetTask(ctx, tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if tk.State != tc.state || !tk.Ended.Equal(tc.ended) || tk.Error != tc.errText {
			t.Errorf("task %s: %s ended %v error %q; want %s, %v, %q",
				tc.name, tk.State, tk.Ended, tk.Error, tc.state, tc.ended, tc.errText)
		}
	}
	if n, err := s.FailUnfinished(ctx, reason, resumed.ID); err != nil || n != 1 {
		t.Fatalf("FailUnfinished again, keeping one: %d %v, want 1", n, err)
	}
	if n, err := s.FailUnfinished(ctx, reason); err != nil || n != 1 {
		t.Fatalf("FailUnfinished again: %d %v, want 1", n, err)
	}
	if n, err := s.FailUnfinished(ctx, reason); err != nil || n != 0 {
		t.Fatalf("FailUnfinished a third time: %d %v, want 0", n, err)
	}
}

// testResolvePoint resolves references to the points testPoints recorded:
// web1 p-1 (r1, r2), p-2, p-4; db1 p-3; p-bare deleted.
func testResolvePoint(t *testing.T, s *Store) {
	ctx := context.Background()
	for _, tc := range []struct {
		ref, want string // want: repository/id
		err       error
	}{
		{ref: "latest", want: "r1/p-4"},
		{ref: "web1:latest", want: "r1/p-4"},
		{ref: "db1:latest", want: "r2/p-3"},
		{ref: "web1:latest~1", want: "r2/p-1"},
		{ref: "web1:latest~2", want: "r1/p-2"},
		{ref: "db1:latest~1", err: ErrNotFound},
		{ref: "p-3", want: "r2/p-3"},
		{ref: "p-2", want: "r1/p-2"},
		{ref: "nope:latest", err: ErrNotFound},
		{ref: "p-9", err: ErrNotFound},
		{ref: "", err: ErrNotFound},
		{ref: "p-bare", err: ErrNotFound},
		{ref: "p%", err: ErrNotFound}, // no pattern matching
		{ref: "p-", err: repo.ErrAmbiguous},
		{ref: "p-1", err: ErrConflict}, // one ID, two repositories
	} {
		p, err := s.ResolvePoint(ctx, tc.ref)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ResolvePoint(%q) = %+v, %v; want %v", tc.ref, p, err, tc.err)
			}
			continue
		}
		if err != nil || p.Repository+"/"+p.ID != tc.want {
			t.Errorf("ResolvePoint(%q) = %s/%s, %v; want %s", tc.ref, p.Repository, p.ID, err, tc.want)
		}
	}
	if _, err := s.ResolvePoint(ctx, "p-"); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "p-1, p-2, p-3, p-4") {
		t.Errorf("ambiguous prefix: %v, want ErrConflict naming the points", err)
	}
}
