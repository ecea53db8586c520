package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// dashEnv is a Server and its store on one fake clock (newEnv's store
// keeps the real one), with a viewer token.
type dashEnv struct {
	*env
	clk *clock.Fake
}

var dashNow = time.Date(2026, 12, 3, 10, 30, 0, 0, time.UTC)

func newDashEnv(t *testing.T) *dashEnv {
	t.Helper()
	clk := clock.NewFake(dashNow)
	store, err := configdb.Open(context.Background(), "sqlite://"+filepath.Join(t.TempDir(), "holdfast.db"),
		configdb.WithMasterKey(testKey), configdb.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, store: store, tokens: map[configdb.Role]string{}, bodies: &bytes.Buffer{}, logs: &bytes.Buffer{}}
	e.srv = New(store, Config{Clock: clk, AgentTimeout: time.Minute})
	tok, err := store.CreateAPIToken(context.Background(), "viewer", configdb.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	e.tokens[configdb.RoleViewer] = tok
	return &dashEnv{env: e, clk: clk}
}

func (d *dashEnv) dashboard() apitypes.Dashboard {
	d.t.Helper()
	return decodeBody[apitypes.Dashboard](d.t, d.mustDo(d.tokens[configdb.RoleViewer], "GET", "/api/v1/dashboard", "", 200))
}

// at runs fn with the clock at dashNow+off, then puts it back.
func (d *dashEnv) at(off time.Duration, fn func()) {
	d.clk.Set(dashNow.Add(off))
	fn()
	d.clk.Set(dashNow)
}

func (d *dashEnv) must(err error) {
	d.t.Helper()
	if err != nil {
		d.t.Fatal(err)
	}
}

func (d *dashEnv) job(name, schedule, def string) {
	d.t.Helper()
	_, err := d.store.CreateJob(context.Background(), configdb.Job{Name: name, Schedule: schedule, Definition: json.RawMessage(def), Enabled: true})
	d.must(err)
}

func (d *dashEnv) point(id, job, vm string, age time.Duration) {
	d.t.Helper()
	_, err := d.store.RecordPoint(context.Background(), configdb.Point{ID: id, Repository: "r1", VM: vm, JobName: job, Created: dashNow.Add(-age)})
	d.must(err)
}

// TestDashboardRPO: a VM whose newest good point is older than its job's
// RPO appears, a fresh one does not, nor one exactly at the RPO; a VM
// listed but never backed up appears first; an infected point does not
// count; an on-demand job without "rpo" has none.
func TestDashboardRPO(t *testing.T) {
	d := newDashEnv(t)
	vms := func(names ...string) string {
		var parts []string
		for _, n := range names {
			parts = append(parts, `{"name":"`+n+`","disks":["/vm/`+n+`.img"]}`)
		}
		return `{"repository":"r1","vms":[` + strings.Join(parts, ",") + `]`
	}
	d.job("nightly", "daily 02:00", vms("fresh", "stale", "edge", "never", "infected")+`}`) // RPO 36 h
	d.job("manual", "", vms("old")+`}`)                                                     // no RPO
	d.job("strict", "", vms("hourly")+`,"rpo":"1h"}`)
	d.job("chained", "after nightly", vms("chain")+`}`)
	d.point("p1", "nightly", "fresh", 10*time.Hour)
	d.point("p2", "nightly", "stale", 37*time.Hour)
	d.point("p3", "nightly", "edge", 36*time.Hour)
	d.point("p4", "nightly", "infected", 40*time.Hour)
	d.point("p5", "nightly", "infected", time.Hour)
	d.must(d.store.SetPointScan(context.Background(), "r1", "p5", configdb.PointScan{Engine: "clamscan", Result: "infected", Findings: 2}))
	d.point("p6", "nightly", "selected", 50*time.Hour) // a VM the job selected from a source
	d.point("p7", "manual", "old", 400*time.Hour)
	d.point("p8", "strict", "hourly", 2*time.Hour)
	d.point("p9", "chained", "chain", 12*time.Hour)

	got := d.dashboard().RPO
	type row struct {
		vm, job, src string
		rpo, age     int64
		never        bool
	}
	var rows []row
	for _, v := range got.Violations {
		rows = append(rows, row{v.VM, v.Job, v.RPOSource, v.RPOSeconds, v.AgeSeconds, v.LastPoint == nil})
	}
	h := int64(3600)
	want := []row{
		{"never", "nightly", "schedule", 36 * h, 0, true},
		{"selected", "nightly", "schedule", 36 * h, 50 * h, false},
		{"infected", "nightly", "schedule", 36 * h, 40 * h, false},
		{"stale", "nightly", "schedule", 36 * h, 37 * h, false}, // as overdue as hourly: by job
		{"hourly", "strict", "explicit", 1 * h, 2 * h, false},
	}
	if len(rows) != len(want) {
		t.Fatalf("violations\n got %+v\nwant %+v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("violation %d: got %+v, want %+v", i, rows[i], want[i])
		}
	}
	if got.JobsChecked != 3 || got.VMsChecked != 8 {
		t.Errorf("checked %d jobs, %d VMs; want 3, 8", got.JobsChecked, got.VMsChecked)
	}
	if v := got.Violations[1]; v.LastPoint == nil || !v.LastPoint.Equal(dashNow.Add(-50*time.Hour)) || !v.JobEnabled {
		t.Errorf("violation %+v: want the last point's time and the job enabled", v)
	}
}

// TestDashboardSessions: the last 24 h, both edges included, by state and
// by UTC clock hour.
func TestDashboardSessions(t *testing.T) {
	d := newDashEnv(t)
	d.job("j1", "", `{"repository":"r1","vms":[{"name":"vm1","disks":["/vm/vm1.img"]}]}`)
	ctx := context.Background()
	start := func(off time.Duration, st configdb.State) {
		d.at(off, func() {
			se, err := d.store.CreateSession(ctx, "j1", "backup")
			d.must(err)
			if st != configdb.StateRunning {
				_, err = d.store.UpdateSession(ctx, se.ID, st, nil)
				d.must(err)
			}
		})
	}
	start(-24*time.Hour-time.Microsecond, configdb.StateFailed) // outside
	start(-24*time.Hour, configdb.StateSuccess)                 // the first instant: 10:30 the day before
	start(-23*time.Hour-20*time.Minute, configdb.StateWarning)  // 11:10 the day before
	start(-time.Minute, configdb.StateFailed)                   // 10:29
	start(0, configdb.StateRunning)                             // now
	start(time.Microsecond, configdb.StateCancelled)            // in the future of the dashboard's now: outside

	got := d.dashboard().Sessions
	want := map[string]int{"queued": 0, "running": 1, "success": 1, "warning": 1, "failed": 1, "cancelled": 0}
	if !equalCounts(got.ByState, want) {
		t.Errorf("by state %v, want %v", got.ByState, want)
	}
	if !got.Since.Equal(dashNow.Add(-24 * time.Hour)) {
		t.Errorf("since %v", got.Since)
	}
	if len(got.Hours) != 25 || !got.Hours[0].Start.Equal(time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)) ||
		!got.Hours[24].Start.Equal(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)) {
		t.Fatalf("%d hours from %v", len(got.Hours), got.Hours[0].Start)
	}
	for i, want := range map[int]map[string]int{0: {"success": 1}, 1: {"warning": 1}, 24: {"failed": 1, "running": 1}, 12: {}} {
		if !equalCounts(got.Hours[i].ByState, want) {
			t.Errorf("hour %d (%v): %v, want %v", i, got.Hours[i].Start, got.Hours[i].ByState, want)
		}
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestDashboardAgentsCapacityRunning: agents online by role, repository
// capacity and its growth from the daily samples, running sessions with
// their tasks and progress.
func TestDashboardAgentsCapacityRunning(t *testing.T) {
	d := newDashEnv(t)
	ctx := context.Background()
	agent := func(role, name, caps string, silent time.Duration) {
		_, err := d.store.UpsertAgent(ctx, configdb.Agent{Role: role, Name: name, Slots: 1, Capabilities: json.RawMessage(caps)})
		d.must(err)
		d.at(-silent, func() { d.must(d.store.Heartbeat(ctx, role, name)) })
	}
	agent("proxy", "px-up", `{}`, time.Minute) // exactly at the timeout: online
	agent("proxy", "px-down", `{}`, time.Minute+time.Second)
	agent("repository", "r1", `{"storage":{"filesystem_size_bytes":1000,"filesystem_free_bytes":700}}`, 0)
	agent("repository", "r2", `{"storage":{"error":"object storage: no capacity to report"}}`, time.Hour)
	_, err := d.store.UpsertAgent(ctx, configdb.Agent{Role: "repository", Name: "r3"}) // never heartbeated
	d.must(err)
	for _, s := range []struct {
		off  time.Duration
		free int64
	}{{-8 * 24 * time.Hour, 990}, {-6 * 24 * time.Hour, 900}, {-3 * 24 * time.Hour, 800}, {0, 700}} {
		d.at(s.off, func() {
			d.must(d.store.RecordRepositorySample(ctx, "r1", configdb.StorageStatus{SizeBytes: 1000, FreeBytes: s.free}))
		})
	}
	d.job("j1", "", `{"repository":"r1","vms":[{"name":"vm1","disks":["/vm/vm1.img","/vm/vm1b.img"]}]}`)
	var se configdb.Session
	d.at(-time.Minute, func() {
		se, err = d.store.CreateSession(ctx, "j1", "backup")
		d.must(err)
	})
	for i, disk := range []string{"/vm/vm1.img", "/vm/vm1b.img"} {
		tk, err := d.store.CreateTask(ctx, configdb.Task{SessionID: se.ID, VM: "vm1", Disk: disk, BytesTotal: 1000})
		d.must(err)
		if i == 0 {
			d.at(-10*time.Second, func() {
				tk.State, tk.Proxy = configdb.StateRunning, "px-up"
				_, err = d.store.UpdateTask(ctx, tk)
				d.must(err)
			})
			tk.State, tk.BytesDone = configdb.StateRunning, 500
			_, err = d.store.UpdateTask(ctx, tk)
			d.must(err)
		}
	}

	got := d.dashboard()
	wantAgents := []apitypes.AgentCount{{Role: "proxy", Online: 1, Offline: 1, OfflineNames: []string{"px-down"}},
		{Role: "repository", Online: 1, Offline: 2, OfflineNames: []string{"r2", "r3"}}}
	for i, w := range wantAgents {
		if g := got.Agents[i]; g.Role != w.Role || g.Online != w.Online || g.Offline != w.Offline || strings.Join(g.OfflineNames, ",") != strings.Join(w.OfflineNames, ",") {
			t.Errorf("agents %+v, want %+v", g, w)
		}
	}
	if len(got.Repositories) != 3 {
		t.Fatalf("repositories %+v", got.Repositories)
	}
	r1, r2 := got.Repositories[0], got.Repositories[1]
	if !r1.Known || !r1.Online || r1.SizeBytes != 1000 || r1.FreeBytes != 700 || r1.UsedBytes != 300 ||
		r1.Growth7dBytes != 200 || r1.GrowthSince != "2026-11-27" || len(r1.Daily) != 3 {
		t.Errorf("r1 %+v: want 300 used, grown 200 since the sample of 6 days ago", r1)
	}
	if r2.Known || r2.Online || r2.Error == "" || r2.Growth7dBytes != 0 || len(r2.Daily) != 0 {
		t.Errorf("r2 %+v: want no capacity, its error, offline", r2)
	}
	if len(got.Running) != 1 {
		t.Fatalf("running %+v", got.Running)
	}
	run := got.Running[0]
	p := run.Progress
	if run.ID != se.ID || len(run.Tasks) != 2 || run.Tasks[0].State != "running" || p == nil ||
		p.BytesDone != 500 || p.BytesTotal != 2000 || p.BytesPerSecond != 50 || p.TasksByState["running"] != 1 || p.TasksByState["queued"] != 1 {
		t.Errorf("running session %+v, progress %+v: want 500 of 2000 bytes at 50 B/s", run, p)
	}
	// GET /sessions/{id} shows the same progress.
	one := decodeBody[apitypes.Session](t, d.mustDo(d.tokens[configdb.RoleViewer], "GET", "/api/v1/sessions/1", "", 200))
	if one.Progress == nil || one.Progress.BytesDone != p.BytesDone || one.Progress.BytesTotal != p.BytesTotal ||
		one.Progress.BytesPerSecond != p.BytesPerSecond {
		t.Errorf("session show progress %+v, dashboard %+v", one.Progress, p)
	}
}

// TestHeartbeatKeepsCapacitySample: a repository agent's heartbeat that
// announces its capacity keeps the day's sample.
func TestHeartbeatKeepsCapacitySample(t *testing.T) {
	e := newEnv(t)
	ts := tlsServer(t, e)
	cert := join(t, e, "repo-a")
	cfg := e.ca.ClientTLSConfig(nil, pki.RoleServer, "")
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer hc.CloseIdleConnections()
	for _, body := range []string{`{}`, `{"capabilities":{"storage":{"filesystem_size_bytes":5000,"filesystem_free_bytes":1200}}}`} {
		resp, err := hc.Post(ts.URL+"/api/v1/agents/heartbeat", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("heartbeat %s: %d", body, resp.StatusCode)
		}
	}
	samples, err := e.store.RepositorySamples(context.Background(), time.Time{})
	if err != nil || len(samples) != 1 || samples[0].Repository != "repo-a" || samples[0].SizeBytes != 5000 || samples[0].FreeBytes != 1200 {
		t.Fatalf("samples %+v, %v", samples, err)
	}
}

// TestDashboardShared: pollers within a second share one answer; the next
// second reads the database again.
func TestDashboardShared(t *testing.T) {
	d := newDashEnv(t)
	first := d.dashboard()
	_, err := d.store.UpsertAgent(context.Background(), configdb.Agent{Role: "proxy", Name: "px1", Slots: 1})
	d.must(err)
	d.clk.Advance(dashboardTTL - time.Millisecond)
	if again := d.dashboard(); again.Agents[0].Offline != 0 || !again.Time.Equal(first.Time) {
		t.Errorf("within the TTL: %+v at %v, want the first answer", again.Agents[0], again.Time)
	}
	d.clk.Advance(time.Millisecond)
	if next := d.dashboard(); next.Agents[0].Offline != 1 || !next.Time.Equal(dashNow.Add(dashboardTTL)) {
		t.Errorf("after the TTL: %+v at %v, want px1 offline", next.Agents[0], next.Time)
	}
}
