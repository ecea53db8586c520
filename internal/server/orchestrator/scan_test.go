package orchestrator

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// scanSession starts a session of a job with scan_after whose backup task
// no proxy reaches, and returns its VM with a committed point recorded.
func scanSession(t *testing.T, proxyCaps string) (*Orchestrator, *configdb.Store, *vmRun, *repo.Manifest) {
	t.Helper()
	clk := newFakeClock(time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC))
	or, store := newTestOrchestrator(t, clk)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	j := backupFixture(t, store, json.RawMessage(`{"repository":"r","password_secret":"pw",
		"vms":[{"name":"vm1","disks":["/images/a.img"]}],
		"scan_after":{"engine":"clamscan","clamav_db":"/srv/clamav"}}`), "nightly")[0]
	if proxyCaps != "" {
		if _, err := store.UpsertAgent(ctx, configdb.Agent{Role: configdb.AgentProxy, Name: "p1", Slots: 2,
			Capabilities: json.RawMessage(proxyCaps)}); err != nil {
			t.Fatal(err)
		}
		if err := store.Heartbeat(ctx, configdb.AgentProxy, "p1"); err != nil {
			t.Fatal(err)
		}
	}
	se, err := store.CreateSession(ctx, j.Name, taskproto.KindBackup)
	if err != nil {
		t.Fatal(err)
	}
	if err := or.Start(ctx, se, j); err != nil {
		t.Fatal(err)
	}
	go or.dispatchLoop(ctx)
	m := &repo.Manifest{Version: 1, ID: "0123456789abcdef", VM: "vm1", Time: clk.Now(),
		Disks: []repo.DiskManifest{{Index: 0, Size: 1 << 20}}}
	if _, err := store.RecordPoint(ctx, configdb.Point{ID: m.ID, Repository: "r", VM: "vm1", JobName: j.Name,
		SessionID: se.ID, Created: m.Time}); err != nil {
		t.Fatal(err)
	}
	or.mu.Lock()
	rs := or.sessions[se.ID]
	vm := rs.vms[0]
	vm.point = m // as releaseVM does after the commit
	or.mu.Unlock()
	return or, store, vm, m
}

// TestScanAfterQueued: after a commit the orchestrator queues one mount
// task with Mount.Scan for a proxy with the mount role (the backup task
// this proxy cannot reach stays queued); the session waits for it, and
// its result becomes the VM's scan summary and the point's scan in the
// points table. An infected point makes the VM end with a warning.
func TestScanAfterQueued(t *testing.T) {
	or, store, vm, m := scanSession(t, `{"reach":["/elsewhere/"]}`)
	ctx := context.Background()
	or.mu.Lock()
	pending := vm.sess.pending
	or.mu.Unlock()
	or.queueScan(ctx, vm, m)
	or.mu.Lock()
	if vm.sess.pending != pending+1 {
		t.Errorf("pending %d after queueing the scan, want %d", vm.sess.pending, pending+1)
	}
	or.mu.Unlock()
	spec, err := or.NextTask(ctx, "p1", time.Minute)
	if err != nil || spec == nil {
		t.Fatalf("NextTask: %+v %v", spec, err)
	}
	var got repo.Manifest
	_ = json.Unmarshal(spec.Previous, &got)
	if spec.Kind != taskproto.KindMount || spec.Mount == nil || spec.Mount.Scan == nil || spec.Mount.Publish ||
		spec.Mount.Scan.ClamAVDB != "/srv/clamav" || spec.Source != "" || got.ID != m.ID {
		t.Fatalf("scan spec: %+v mount %+v (point %s)", spec, spec.Mount, got.ID)
	}
	first := &repo.ScanFinding{Filesystem: "disk0-p1", Path: "/eicar\n.com", Signature: "Eicar-Test-Signature"}
	if err := or.TaskResult(ctx, "p1", taskproto.Result{TaskID: spec.TaskID, Attempt: spec.Attempt,
		Scan: &taskproto.ScanResult{Engine: "clamscan", Result: repo.ScanInfected, Findings: 3, First: first, Recorded: true}}); err != nil {
		t.Fatal(err)
	}
	res := or.result(vm.sess)
	v := res.VMs[0]
	if v.Scan == nil || v.Scan.Summary != `scan: infected 3 (disk0-p1:/eicar\n.com: Eicar-Test-Signature)` || v.Scan.Proxy != "p1" {
		t.Fatalf("VM scan: %+v", v.Scan)
	}
	if v.Status != configdb.StateWarning || len(v.Disks) != 1 {
		t.Errorf("VM status %s with %d disks, want warning and the backup disk only", v.Status, len(v.Disks))
	}
	p, err := store.GetPoint(ctx, m.ID)
	if err != nil || p.Scan.Result != repo.ScanInfected || p.Scan.Findings != 3 || p.Scan.Engine != "clamscan" {
		t.Fatalf("point's scan: %+v %v", p.Scan, err)
	}
}

// TestScanAfterOutcomes: how each scan outcome shows in the VM result.
func TestScanAfterOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		res     taskproto.Result
		summary string
		status  configdb.State
		point   string
	}{
		{"clean", taskproto.Result{Scan: &taskproto.ScanResult{Engine: "clamscan", Result: repo.ScanClean}},
			"scan: clean", configdb.StateSuccess, repo.ScanClean},
		{"engine missing", taskproto.Result{Scan: &taskproto.ScanResult{Engine: "clamscan", Result: repo.ScanFailed, Error: "clamscan: not found"}},
			"scan: not scanned: clamscan: not found", configdb.StateWarning, repo.ScanFailed},
		{"attempt failed", taskproto.Result{Error: "repository agent: unreachable"},
			"scan: not scanned: repository agent: unreachable", configdb.StateWarning, repo.ScanFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			or, store, vm, m := scanSession(t, `{"reach":["/elsewhere/"]}`)
			ctx := context.Background()
			or.queueScan(ctx, vm, m)
			spec, err := or.NextTask(ctx, "p1", time.Minute)
			if err != nil || spec == nil {
				t.Fatalf("NextTask: %+v %v", spec, err)
			}
			tc.res.TaskID, tc.res.Attempt = spec.TaskID, spec.Attempt
			if err := or.TaskResult(ctx, "p1", tc.res); err != nil {
				t.Fatal(err)
			}
			v := or.result(vm.sess).VMs[0]
			if v.Scan == nil || v.Scan.Summary != tc.summary || v.Status != tc.status {
				t.Fatalf("VM %s scan %+v, want %s %q", v.Status, v.Scan, tc.status, tc.summary)
			}
			if p, _ := store.GetPoint(ctx, m.ID); p.Scan.Result != tc.point {
				t.Errorf("point's scan %+v, want %s", p.Scan, tc.point)
			}
		})
	}
}

// TestScanAfterNoMountServer: without an online proxy with the mount role
// no scan is queued; the VM ends with the warning that says so.
func TestScanAfterNoMountServer(t *testing.T) {
	for name, caps := range map[string]string{"no proxy": "", "proxy without the mount role": `{"no_mount":true,"reach":["/elsewhere/"]}`} {
		t.Run(name, func(t *testing.T) {
			or, store, vm, m := scanSession(t, caps)
			ctx := context.Background()
			queued := len(or.sched.Queued())
			or.queueScan(ctx, vm, m)
			if n := len(or.sched.Queued()); n != queued {
				t.Fatalf("queued %d tasks, had %d: a scan was queued", n, queued)
			}
			v := or.result(vm.sess).VMs[0]
			if v.Scan == nil || v.Scan.Summary != noMountServer || v.Scan.Result != scanSkipped || v.Status != configdb.StateWarning {
				t.Fatalf("VM %s scan %+v", v.Status, v.Scan)
			}
			if !strings.Contains(noMountServer, "scan skipped: no proxy with the mount role") {
				t.Fatal(noMountServer)
			}
			if p, _ := store.GetPoint(ctx, m.ID); p.Scan.Result != "" {
				t.Errorf("a skipped scan recorded on the point: %+v", p.Scan)
			}
		})
	}
}

// TestScanAfterResumed: a session the previous server process left
// running with a committed but unscanned point scans it again; a point
// with a scan result is not scanned twice.
func TestScanAfterResumed(t *testing.T) {
	for name, scanned := range map[string]bool{"unscanned": false, "scanned": true} {
		t.Run(name, func(t *testing.T) {
			or, store := newTestOrchestrator(t, newFakeClock(time.Date(2026, 12, 3, 7, 0, 0, 0, time.UTC)))
			ctx := context.Background()
			backupFixture(t, store, json.RawMessage(`{"repository":"r","password_secret":"pw",
				"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"scan_after":{}}`), "nightly")
			if _, err := store.UpsertAgent(ctx, configdb.Agent{Role: configdb.AgentProxy, Name: "p1", Slots: 1}); err != nil {
				t.Fatal(err)
			}
			if err := store.Heartbeat(ctx, configdb.AgentProxy, "p1"); err != nil {
				t.Fatal(err)
			}
			se, _ := store.CreateSession(ctx, "nightly", taskproto.KindBackup)
			for _, disk := range []string{"0", "scan"} {
				tk, _ := store.CreateTask(ctx, configdb.Task{SessionID: se.ID, VM: "vm1", Disk: disk})
				tk.State, tk.Attempt = configdb.StateRunning, 1
				if disk == "0" {
					tk.State = configdb.StateSuccess
				}
				if _, err := store.UpdateTask(ctx, tk); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := store.RecordPoint(ctx, configdb.Point{ID: "0123456789abcdef", Repository: "r", VM: "vm1",
				JobName: "nightly", SessionID: se.ID, Disks: json.RawMessage(`[]`)}); err != nil {
				t.Fatal(err)
			}
			if scanned {
				if err := store.SetPointScan(ctx, "r", "0123456789abcdef", configdb.PointScan{Engine: "clamscan", Result: "clean"}); err != nil {
					t.Fatal(err)
				}
			}
			if err := or.recoverSessions(ctx); err != nil {
				t.Fatal(err)
			}
			q := or.sched.Queued()
			got, _ := store.GetSession(ctx, se.ID)
			if scanned {
				if len(q) != 0 || got.State != configdb.StateSuccess {
					t.Fatalf("a scanned point: queued %+v, session %s", q, got.State)
				}
				return
			}
			if len(q) != 1 || q[0].Task.VM != scanVM("vm1") || q[0].Task.SourceID != mountSource || got.State != configdb.StateRunning {
				t.Fatalf("queued %+v, session %s: want the scan of vm1's point", q, got.State)
			}
		})
	}
}

// TestScanAfterCancelled: cancelling a session whose scan waits ends the
// scan as not scanned; the session ends cancelled.
func TestScanAfterCancelled(t *testing.T) {
	or, store, vm, m := scanSession(t, `{"reach":["/elsewhere/"],"no_mount":true}`)
	ctx := context.Background()
	if _, err := store.UpsertAgent(ctx, configdb.Agent{Role: configdb.AgentProxy, Name: "p2", Slots: 1,
		Capabilities: json.RawMessage(`{"reach":["/elsewhere/"]}`)}); err != nil {
		t.Fatal(err)
	}
	if err := store.Heartbeat(ctx, configdb.AgentProxy, "p2"); err != nil {
		t.Fatal(err)
	}
	or.queueScan(ctx, vm, m) // queued or, if p2 took it meanwhile, running: both end as cancelled
	if _, err := or.CancelSession(ctx, vm.sess.id); err != nil {
		t.Fatal(err)
	}
	se, err := store.GetSession(ctx, vm.sess.id)
	if err != nil || se.State != configdb.StateCancelled {
		t.Fatalf("session %s %v, want cancelled", se.State, err)
	}
	var res Result
	if err := json.Unmarshal(se.Result, &res); err != nil || res.VMs[0].Scan == nil ||
		res.VMs[0].Scan.Summary != "scan: not scanned: cancelled by request" {
		t.Fatalf("result %s (%v)", se.Result, err)
	}
}
