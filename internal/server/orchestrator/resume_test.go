package orchestrator

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// TestRecoverSessions: on start, a backup session the previous process left
// running runs again — its VM with a committed point stays done, the other
// VM's task is queued as its next attempt — while a session whose job was
// deleted and a restore session fail, saying why.
func TestRecoverSessions(t *testing.T) {
	or, store := newTestOrchestrator(t, newFakeClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)))
	ctx := context.Background()
	backupFixture(t, store, json.RawMessage(`{"repository":"r","password_secret":"pw","vms":[
		{"name":"vm1","disks":["/images/vm1.img"]},{"name":"vm2","disks":["/images/vm2.img"]}]}`), "nightly", "gone")
	session := func(job, kind string, tasks map[string]configdb.State) (configdb.Session, map[string]configdb.Task) {
		t.Helper()
		se, err := store.CreateSession(ctx, job, kind)
		if err != nil {
			t.Fatal(err)
		}
		rows := map[string]configdb.Task{}
		for vm, st := range tasks {
			tk, err := store.CreateTask(ctx, configdb.Task{SessionID: se.ID, VM: vm, Disk: "0"})
			if err != nil {
				t.Fatal(err)
			}
			tk.State, tk.Attempt, tk.Proxy = st, 1, "p1"
			if tk, err = store.UpdateTask(ctx, tk); err != nil {
				t.Fatal(err)
			}
			rows[vm] = tk
		}
		return se, rows
	}
	running, rows := session("nightly", taskproto.KindBackup,
		map[string]configdb.State{"vm1": configdb.StateSuccess, "vm2": configdb.StateRunning})
	if _, err := store.RecordPoint(ctx, configdb.Point{ID: "p-vm1", Repository: "r", VM: "vm1", JobName: "nightly",
		SessionID: running.ID, Disks: json.RawMessage(`[]`)}); err != nil {
		t.Fatal(err)
	}
	orphan, orphanRows := session("gone", taskproto.KindBackup, map[string]configdb.State{"vm1": configdb.StateRunning})
	if err := store.DeleteJob(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	restore, restoreRows := session("", "restore", map[string]configdb.State{"vm1": configdb.StateRunning})

	if err := or.recoverSessions(ctx); err != nil {
		t.Fatal(err)
	}

	if se, _ := store.GetSession(ctx, running.ID); se.State != configdb.StateRunning {
		t.Errorf("resumed session: %s, want running", se.State)
	}
	if tk, _ := store.GetTask(ctx, rows["vm1"].ID); tk.State != configdb.StateSuccess {
		t.Errorf("task of the committed VM: %s, want success", tk.State)
	}
	tk, _ := store.GetTask(ctx, rows["vm2"].ID)
	if tk.State != configdb.StateQueued || !strings.Contains(tk.Error, "restarted during attempt 1") {
		t.Errorf("task of the uncommitted VM: %s %q, want queued again", tk.State, tk.Error)
	}
	if q := or.sched.Queued(); len(q) != 1 || q[0].Task.VM != "vm2" {
		t.Fatalf("queued %+v, want vm2's task", q)
	}
	or.mu.Lock()
	base := or.tasks[rows["vm2"].ID].base
	or.mu.Unlock()
	if base != 1 {
		t.Errorf("requeued task's attempt base %d, want 1 (its next attempt is 2)", base)
	}

	for _, tc := range []struct {
		name string
		id   int64
		task int64
		want string
	}{
		{"job deleted", orphan.ID, orphanRows["vm1"].ID, "could not run again"},
		{"restore", restore.ID, restoreRows["vm1"].ID, restartReason},
	} {
		se, _ := store.GetSession(ctx, tc.id)
		if se.State != configdb.StateFailed || !strings.Contains(string(se.Result), tc.want) {
			t.Errorf("%s session: %s %s, want failed saying %q", tc.name, se.State, se.Result, tc.want)
		}
		if tk, _ := store.GetTask(ctx, tc.task); tk.State != configdb.StateFailed {
			t.Errorf("%s task: %s, want failed", tc.name, tk.State)
		}
	}
}
