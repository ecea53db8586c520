package orchestrator

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// TestStartTaskSources: each disk's task is queued with the reach key and
// the transports source.Parse gives — an nbds+unix:// export is read over
// NBD with TLS (it was offered to "direct" proxies), a file:// URL is
// reached by its path.
func TestStartTaskSources(t *testing.T) {
	or, store := newTestOrchestrator(t, newFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)))
	ctx := context.Background()
	j := backupFixture(t, store, json.RawMessage(`{"repository":"r","password_secret":"pw","vms":[
		{"name":"tls","disks":["nbds+unix:///x?socket=/run/nbd.sock"]},
		{"name":"file","disks":["file:///images/b.img"]},
		{"name":"vm","disks":["qemu:///run/vm/qmp.sock"]}]}`), "j")[0]
	se, err := store.CreateSession(ctx, j.Name, taskproto.KindBackup)
	if err != nil {
		t.Fatal(err)
	}
	if err := or.Start(ctx, se, j); err != nil {
		t.Fatal(err)
	}
	type want struct {
		key        string
		transports []source.Transport
	}
	wants := map[string]want{
		"tls":  {"nbds+unix:///run/nbd.sock", []source.Transport{source.TransportNBDTLS}},
		"file": {"/images/b.img", []source.Transport{source.TransportDirect}},
		"vm":   {"qemu:///run/vm/qmp.sock", []source.Transport{source.TransportDirect, source.TransportHotAdd, source.TransportNBD}},
	}
	q := or.sched.Queued()
	if len(q) != len(wants) {
		t.Fatalf("queued %d tasks, want %d: %+v", len(q), len(wants), q)
	}
	for _, w := range q {
		got := want{w.Task.SourceID, w.Task.Transports}
		if !reflect.DeepEqual(got, wants[w.Task.VM]) {
			t.Errorf("VM %s: queued with %+v, want %+v", w.Task.VM, got, wants[w.Task.VM])
		}
	}
}

// backupFixture registers the repository agent "r" and the password secret
// "pw", and creates a job with def under each name.
func backupFixture(t *testing.T, store *configdb.Store, def json.RawMessage, names ...string) []configdb.Job {
	t.Helper()
	ctx := context.Background()
	if _, err := store.UpsertAgent(ctx, configdb.Agent{Role: configdb.AgentRepository, Name: "r", Slots: 1}); err != nil {
		t.Fatal(err)
	}
	if err := store.PutSecret(ctx, "pw", []byte("secret")); err != nil {
		t.Fatal(err)
	}
	var jobs []configdb.Job
	for _, name := range names {
		j, err := store.CreateJob(ctx, configdb.Job{Name: name, Definition: def})
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	return jobs
}

// newNightly is an orchestrator with repository r registered and job
// nightly backing up vm1 to it.
func newNightly(t *testing.T) (*Orchestrator, *configdb.Store, configdb.Job) {
	t.Helper()
	or, store := newTestOrchestrator(t, newFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)))
	jobs := backupFixture(t, store, json.RawMessage(`{"repository":"r","password_secret":"pw","vms":[{"name":"vm1","disks":["/images/a.img"]}]}`), "nightly")
	return or, store, jobs[0]
}

// TestStartWhileRunning: two runs of one job at once (two API requests
// racing past the API's check) start one session; the other is refused
// as a conflict naming the running session.
func TestStartWhileRunning(t *testing.T) {
	or, store, j := newNightly(t)
	ctx := context.Background()
	first, _ := store.CreateSession(ctx, j.Name, taskproto.KindBackup)
	second, _ := store.CreateSession(ctx, j.Name, taskproto.KindBackup)
	// An instant recovery of one of the job's points is no run of it.
	or.sessions[99] = &runSession{id: 99, job: j.Name, kind: taskproto.KindMount}
	if err := or.Start(ctx, first, j); err != nil {
		t.Fatal(err)
	}
	or.mu.Lock()
	mountErr := or.checkNotRunningLocked(&runSession{id: 100, job: j.Name, kind: taskproto.KindMount})
	or.mu.Unlock()
	if mountErr != nil {
		t.Errorf("a second instant recovery of the job's points: %v", mountErr)
	}
	err := or.Start(ctx, second, j)
	if !errors.Is(err, configdb.ErrConflict) || !strings.Contains(err.Error(), "job nightly is already running (session "+itoa(first.ID)+")") {
		t.Fatalf("second start: %v, want a conflict naming session %d", err, first.ID)
	}
}

// TestWaitingReasons: a session whose task no proxy can reach records why
// on the task ("waiting: no proxy can reach vm1 …"), which `session show`
// and the API show as the session's waiting reason.
func TestWaitingReasons(t *testing.T) {
	or, store, j := newNightly(t)
	ctx := context.Background()
	se, _ := store.CreateSession(ctx, j.Name, taskproto.KindBackup)
	if err := or.Start(ctx, se, j); err != nil {
		t.Fatal(err)
	}
	or.noteWaiting(ctx)
	tasks, err := store.ListTasks(ctx, se.ID)
	if err != nil || len(tasks) != 1 {
		t.Fatalf("tasks %+v, %v", tasks, err)
	}
	if want := "waiting: no proxy can reach vm1 ("; !strings.HasPrefix(tasks[0].Error, want) {
		t.Errorf("task error %q, want it to start %q", tasks[0].Error, want)
	}
}
