package configdb

import (
	"context"
	"encoding/json"
	"reflect"
	"sync"
	"testing"
	"time"
)

// recorder is an Observer keeping what it was told.
type recorder struct {
	mu       sync.Mutex
	sessions []State
	tasks    []State
}

func (r *recorder) SessionEnded(s Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions = append(r.sessions, s.State)
}

func (r *recorder) TaskEnded(t Task) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = append(r.tasks, t.State)
}

// testMonitor checks the observer and the reads behind the server's
// metrics: each job's last ended session and last success, each VM's
// newest point, the active sessions.
func testMonitor(t *testing.T, s *Store, clk *testClock, rec *recorder) {
	ctx := context.Background()
	def := json.RawMessage(`{"vms":["web1"],"repository":"r1"}`)
	for _, name := range []string{"a", "b"} {
		if _, err := s.CreateJob(ctx, Job{Name: name, Definition: def, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	end := func(job string, st State) Session {
		t.Helper()
		se, err := s.CreateSession(ctx, job, "backup")
		if err != nil {
			t.Fatal(err)
		}
		clk.advance(time.Minute)
		if se, err = s.UpdateSession(ctx, se.ID, st, json.RawMessage(`{"vms":[]}`)); err != nil {
			t.Fatal(err)
		}
		clk.advance(time.Hour)
		return se
	}
	ok := end("a", StateWarning)
	failed := end("a", StateFailed)
	running, err := s.CreateSession(ctx, "b", "backup")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := s.CreateTask(ctx, Task{SessionID: running.ID, VM: "web1", Disk: "0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range []State{StateRunning, StateFailed, StateQueued, StateRunning, StateSuccess} {
		tk.State = st
		if _, err := s.UpdateTask(ctx, tk); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(rec.sessions, []State{StateWarning, StateFailed}) ||
		!reflect.DeepEqual(rec.tasks, []State{StateFailed, StateSuccess}) {
		t.Fatalf("observed sessions %v, tasks %v", rec.sessions, rec.tasks)
	}

	jobs, err := s.JobStatuses(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 {
		t.Fatalf("job statuses %+v, want job a only (b has no ended session)", jobs)
	}
	if j := jobs[0]; j.Job != "a" || j.LastSession != failed.ID || j.LastState != StateFailed ||
		!j.LastEnded.Equal(failed.Ended) || !j.LastSuccess.Equal(ok.Ended) || string(j.LastResult) != `{"vms":[]}` {
		t.Fatalf("job a: %+v; want last session %d failed at %v, last success %v", j, failed.ID, failed.Ended, ok.Ended)
	}
	active, err := s.ActiveSessions(ctx)
	if err != nil || !reflect.DeepEqual(active, []SessionCount{{Kind: "backup", State: StateRunning, N: 1}}) {
		t.Fatalf("active sessions %+v, %v", active, err)
	}

	t0 := clk.now().UTC().Truncate(time.Microsecond)
	for i, p := range []Point{{ID: "p1", VM: "web1", Created: t0}, {ID: "p2", VM: "web1", Created: t0.Add(time.Hour)},
		{ID: "p3", VM: "db1", Created: t0}} {
		p.Repository = "r1"
		if _, err := s.RecordPoint(ctx, p); err != nil {
			t.Fatalf("point %d: %v", i, err)
		}
	}
	last, err := s.LastPoints(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 2 || !last["web1"].Equal(t0.Add(time.Hour)) || !last["db1"].Equal(t0) {
		t.Fatalf("last points %v", last)
	}
}
