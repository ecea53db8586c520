package monitor

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repoagent"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

type slots []scheduler.Usage

func (s slots) SlotUsage() []scheduler.Usage { return s }

func openStore(t *testing.T, clk clock.Clock, obs configdb.Observer) *configdb.Store {
	t.Helper()
	s, err := configdb.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "db"),
		configdb.WithClock(clk), configdb.WithObserver(obs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestState scrapes the state collector: agents up by the age of their
// last heartbeat, the repository's file system from its heartbeat
// capability, slots, job and VM results, active sessions.
func TestState(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Unix(1_900_000_000, 0))
	ev := NewEvents()
	s := openStore(t, clk, ev)
	caps, err := json.Marshal(repoagent.StorageReport{Path: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []configdb.Agent{{Role: "proxy", Name: "p1", Slots: 2}, {Role: "proxy", Name: "p2", Slots: 1},
		{Role: "repository", Name: "r1", Slots: 4, Capabilities: caps}} {
		if _, err := s.UpsertAgent(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateJob(ctx, configdb.Job{Name: "nightly", Definition: json.RawMessage(`{"vms":["web1"]}`)}); err != nil {
		t.Fatal(err)
	}
	se, err := s.CreateSession(ctx, "nightly", "backup")
	must(t, err)
	clk.Advance(90 * time.Second)
	_, err = s.UpdateSession(ctx, se.ID, configdb.StateFailed,
		json.RawMessage(`{"vms":[{"name":"web1","status":"failed"},{"name":"db1","status":"success"}]}`))
	must(t, err)
	_, err = s.CreateSession(ctx, "", "restore")
	must(t, err)
	_, err = s.RecordPoint(ctx, configdb.Point{ID: "pt", Repository: "r1", VM: "db1", Created: time.Unix(1_900_000_010, 0)})
	must(t, err)

	must(t, s.Heartbeat(ctx, "proxy", "p2")) // silent for 31 s below: down
	clk.Advance(31 * time.Second)
	must(t, s.Heartbeat(ctx, "proxy", "p1"))
	must(t, s.Heartbeat(ctx, "repository", "r1"))

	st := NewState(StateOptions{Store: s, Clock: clk, Slots: slots{{Role: "proxy", ID: "p1", Slots: 2, Busy: 1}}})
	want := `
# HELP holdfast_agent_slots_busy Task slots of the agent running a task now.
# TYPE holdfast_agent_slots_busy gauge
holdfast_agent_slots_busy{agent="p1",role="proxy"} 1
# HELP holdfast_agent_up 1 if the agent heartbeated within the agent timeout, else 0.
# TYPE holdfast_agent_up gauge
holdfast_agent_up{agent="p1",role="proxy"} 1
holdfast_agent_up{agent="p2",role="proxy"} 0
holdfast_agent_up{agent="r1",role="repository"} 1
# HELP holdfast_job_last_result 1 for the result of the job's last ended session (label result).
# TYPE holdfast_job_last_result gauge
holdfast_job_last_result{job="nightly",result="failed"} 1
# HELP holdfast_job_last_end_timestamp_seconds When the job's last session ended, as a Unix time.
# TYPE holdfast_job_last_end_timestamp_seconds gauge
holdfast_job_last_end_timestamp_seconds{job="nightly"} 1.90000009e+09
# HELP holdfast_sessions_active Sessions queued or running, by kind and state.
# TYPE holdfast_sessions_active gauge
holdfast_sessions_active{kind="restore",state="running"} 1
# HELP holdfast_vm_last_result 1 for the result of the VM in its job's last ended session (label result).
# TYPE holdfast_vm_last_result gauge
holdfast_vm_last_result{job="nightly",result="failed",vm="web1"} 1
holdfast_vm_last_result{job="nightly",result="success",vm="db1"} 1
# HELP holdfast_vm_last_success_timestamp_seconds When the VM's newest restore point was created, as a Unix time.
# TYPE holdfast_vm_last_success_timestamp_seconds gauge
holdfast_vm_last_success_timestamp_seconds{vm="db1"} 1.90000001e+09
`
	names := []string{"holdfast_agent_slots_busy", "holdfast_agent_up", "holdfast_job_last_result",
		"holdfast_job_last_end_timestamp_seconds", "holdfast_job_last_success_timestamp_seconds",
		"holdfast_sessions_active", "holdfast_vm_last_result", "holdfast_vm_last_success_timestamp_seconds"}
	if err := testutil.CollectAndCompare(st, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	reg := prometheus.NewRegistry()
	must(t, Register(reg, ev, st))
	if n, err := testutil.GatherAndCount(reg, "holdfast_repository_filesystem_free_bytes", "holdfast_repository_filesystem_size_bytes"); n != 2 || err != nil {
		t.Errorf("repository file system series: %d, %v", n, err)
	}
	if n, _ := testutil.GatherAndCount(reg, "go_goroutines"); n != 1 {
		t.Error("no Go collector")
	}
}

// TestEvents counts and times sessions and tasks as the store reports
// them, bytes by stage.
func TestEvents(t *testing.T) {
	ev := NewEvents()
	t0 := time.Unix(1_900_000_000, 0)
	ev.SessionEnded(configdb.Session{Kind: "backup", State: configdb.StateSuccess, Started: t0, Ended: t0.Add(20 * time.Second)})
	ev.TaskEnded(configdb.Task{Repository: "r1", State: configdb.StateSuccess, Queued: t0, Started: t0.Add(time.Second),
		Ended: t0.Add(4 * time.Second), BytesRead: 100, BytesTransferred: 40, BytesWritten: 30})
	ev.TaskEnded(configdb.Task{Repository: "r1", State: configdb.StateFailed, Queued: t0, Ended: t0.Add(2 * time.Second), BytesRead: 5})
	want := `
# HELP holdfast_task_bytes_total Bytes of ended task attempts by repository and stage: read (from the source), new (sent to the repository), stored (written as new chunks).
# TYPE holdfast_task_bytes_total counter
holdfast_task_bytes_total{repository="r1",stage="new"} 40
holdfast_task_bytes_total{repository="r1",stage="read"} 105
holdfast_task_bytes_total{repository="r1",stage="stored"} 30
`
	if err := testutil.CollectAndCompare(ev, strings.NewReader(want), "holdfast_task_bytes_total"); err != nil {
		t.Error(err)
	}
	reg := prometheus.NewRegistry()
	must(t, reg.Register(ev))
	fams, err := reg.Gather()
	must(t, err)
	sums := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if h := m.GetHistogram(); h != nil {
				key := f.GetName()
				for _, l := range m.GetLabel() {
					key += "," + l.GetValue()
				}
				sums[key] = h.GetSampleSum()
				sums[key+",count"] = float64(h.GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"holdfast_session_duration_seconds,backup,success": 20, "holdfast_session_duration_seconds,backup,success,count": 1,
		"holdfast_task_duration_seconds,success": 3, "holdfast_task_duration_seconds,failed": 2,
	} {
		if sums[key] != want {
			t.Errorf("%s = %v, want %v (all: %v)", key, sums[key], want, sums)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
