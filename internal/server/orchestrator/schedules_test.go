package orchestrator

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// fakeClock is a settable clock.
type fakeClock struct{ *clock.Fake }

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{clock.NewFake(t)} }
func (c *fakeClock) set(t time.Time)      { c.Set(t) }

func newTestOrchestrator(t *testing.T, clk *fakeClock) (*Orchestrator, *configdb.Store) {
	t.Helper()
	ctx := context.Background()
	store, err := configdb.Open(ctx, "sqlite://"+filepath.Join(t.TempDir(), "db"),
		configdb.WithMasterKey(make([]byte, 32)), configdb.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	or := New(Options{Store: store, Clock: clk})
	close(or.ready) // as Run does after recovery
	return or, store
}

// sessionsOf counts a job's sessions.
func sessionsOf(t *testing.T, store *configdb.Store, job string) []configdb.Session {
	t.Helper()
	ss, err := store.ListSessions(context.Background(), configdb.SessionFilter{JobName: job})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func TestSchedulesFire(t *testing.T) {
	loc := time.Local
	clock := newFakeClock(time.Date(2026, 11, 23, 10, 0, 30, 0, loc))
	or, store := newTestOrchestrator(t, clock)
	ctx := context.Background()
	def := json.RawMessage(`{"vms":[{"name":"vm1","disks":["/nonexistent.img"]}],"repository":"nowhere"}`)
	for _, j := range []configdb.Job{
		{Name: "every5", Definition: def, Schedule: "*/5 * * * *", Enabled: true},
		{Name: "daily", Definition: def, Schedule: "daily 11:00", Enabled: true},
		{Name: "off", Definition: def, Schedule: "* * * * *", Enabled: false},
		{Name: "chained", Definition: def, Schedule: "after every5", Enabled: true},
	} {
		if _, err := store.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		at                   string
		every5, daily, chain int
	}{
		{"10:00:30", 0, 0, 0}, // first sight: next firings computed, nothing due
		{"10:04:59", 0, 0, 0},
		{"10:05:00", 1, 0, 0},
		{"10:05:30", 1, 0, 0}, // fires once per due time
		{"10:10:01", 2, 0, 0},
		{"11:00:00", 3, 1, 0},
	}
	for _, st := range steps {
		hm, _ := time.ParseInLocation("15:04:05", st.at, loc)
		clock.set(time.Date(2026, 11, 23, hm.Hour(), hm.Minute(), hm.Second(), 0, loc))
		if err := or.fireSchedules(ctx); err != nil {
			t.Fatal(err)
		}
		got := []int{len(sessionsOf(t, store, "every5")), len(sessionsOf(t, store, "daily")), len(sessionsOf(t, store, "chained"))}
		if got[0] != st.every5 || got[1] != st.daily || got[2] != st.chain {
			t.Fatalf("at %s: sessions every5/daily/chained = %v, want %d/%d/%d", st.at, got, st.every5, st.daily, st.chain)
		}
	}
	if n := len(sessionsOf(t, store, "off")); n != 0 {
		t.Errorf("disabled job ran %d times", n)
	}
	// The repository is not registered: each firing made a failed session
	// saying why, and the audit log names the scheduler.
	se := sessionsOf(t, store, "every5")[0]
	if se.State != configdb.StateFailed || len(se.Result) == 0 {
		t.Errorf("session %+v %s", se, se.Result)
	}
	audit, err := store.ListAudit(ctx, configdb.AuditFilter{Actor: "scheduler"})
	if err != nil || len(audit) != 4 {
		t.Errorf("audit by the scheduler: %d entries, %v", len(audit), err)
	}

	// A chained job starts when its predecessor's session ends.
	or.fireChained(ctx, "every5")
	if n := len(sessionsOf(t, store, "chained")); n != 1 {
		t.Errorf("chained job ran %d times, want 1", n)
	}
}

func TestScheduleSkipsWhileRunning(t *testing.T) {
	clock := newFakeClock(time.Date(2026, 11, 23, 10, 0, 30, 0, time.Local))
	or, store := newTestOrchestrator(t, clock)
	ctx := context.Background()
	j, err := store.CreateJob(ctx, configdb.Job{Name: "busy", Definition: json.RawMessage(`{"vms":["x"]}`),
		Schedule: "* * * * *", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	or.sessions[99] = &runSession{id: 99, job: j.Name, kind: "backup"} // a session still running
	or.runJob(ctx, j, "test")
	if n := len(sessionsOf(t, store, "busy")); n != 0 {
		t.Errorf("started %d sessions while one was running", n)
	}
}

// A schedule whose firing passed while the server was down runs once when
// the server starts (the orchestrator first sees the schedule), unless the
// job says "missed": "skip"; a job created or run since its last firing
// does not.
func TestScheduleMissedWhileDown(t *testing.T) {
	loc := time.Local
	clock := newFakeClock(time.Date(2026, 11, 23, 1, 0, 0, 0, loc))
	ctx := context.Background()
	dir := t.TempDir()
	open := func() (*Orchestrator, *configdb.Store) {
		store, err := configdb.Open(ctx, "sqlite://"+filepath.Join(dir, "db"),
			configdb.WithMasterKey(make([]byte, 32)), configdb.WithClock(clock))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		or := New(Options{Store: store, Clock: clock})
		close(or.ready)
		return or, store
	}
	_, store := open()
	vms := `"vms":[{"name":"vm1","disks":["/nonexistent.img"]}],"repository":"nowhere"`
	for _, j := range []configdb.Job{
		{Name: "nightly", Definition: json.RawMessage(`{` + vms + `}`), Schedule: "daily 02:00", Enabled: true},
		{Name: "skipper", Definition: json.RawMessage(`{` + vms + `,"missed":"skip"}`), Schedule: "daily 02:00", Enabled: true},
		{Name: "later", Definition: json.RawMessage(`{` + vms + `}`), Schedule: "daily 23:00", Enabled: true},
	} {
		if _, err := store.CreateJob(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	// The server was down from 01:00 to 03:00 (02:00 missed); it starts.
	clock.set(time.Date(2026, 11, 23, 3, 0, 0, 0, loc))
	or, store := open()
	for range 3 { // once, not once per check
		if err := or.fireSchedules(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(sessionsOf(t, store, "nightly")); n != 1 {
		t.Errorf("nightly ran %d times after a missed firing, want 1", n)
	}
	if n := len(sessionsOf(t, store, "skipper")); n != 0 {
		t.Errorf(`"missed": "skip" ran %d times at start, want 0`, n)
	}
	if n := len(sessionsOf(t, store, "later")); n != 0 {
		t.Errorf("a job whose firing is still ahead ran %d times", n)
	}
	// Restarted again at once: the run at 03:00 answered the missed firing.
	clock.set(time.Date(2026, 11, 23, 3, 5, 0, 0, loc))
	or, store = open()
	if err := or.fireSchedules(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(sessionsOf(t, store, "nightly")); n != 1 {
		t.Errorf("nightly ran %d times after a second restart, want 1", n)
	}
}
