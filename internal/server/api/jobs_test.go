package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

func TestJobCRUD(t *testing.T) {
	e := newEnv(t)
	e.runner.keep = true
	op := e.tokens[configdb.RoleBackupOperator]
	rec := e.mustDo(op, "POST", "/api/v1/jobs",
		`{"name":"nightly","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"},"schedule":"0 2 * * *"}`, 201)
	j := decodeBody[apitypes.Job](t, rec)
	if j.Name != "nightly" || j.Kind != "backup" || !j.Enabled || j.Schedule != "0 2 * * *" || j.ID == 0 {
		t.Fatalf("created job %+v", j)
	}
	got := decodeBody[apitypes.Job](t, e.mustDo(op, "GET", "/api/v1/jobs/nightly", "", 200))
	if got.ID != j.ID || compact(t, got.Definition) != `{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"}` {
		t.Fatalf("get job %+v (definition %s)", got, got.Definition)
	}
	all := decodeBody[[]apitypes.Job](t, e.mustDo(op, "GET", "/api/v1/jobs", "", 200))
	if len(all) != 2 || all[1].Name != "nightly" && all[0].Name != "nightly" {
		t.Fatalf("job list %+v", all)
	}
	upd := decodeBody[apitypes.Job](t, e.mustDo(op, "PUT", "/api/v1/jobs/nightly",
		`{"definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]},{"name":"vm2","disks":["/images/vm2.img"]}],"repository":"repo1"},"schedule":"","enabled":false}`, 200))
	if upd.ID != j.ID || upd.Enabled || upd.Schedule != "" || !strings.Contains(string(upd.Definition), "vm2") {
		t.Fatalf("updated job %+v", upd)
	}
	if en := decodeBody[apitypes.Job](t, e.mustDo(op, "POST", "/api/v1/jobs/nightly/enable", "", 200)); !en.Enabled {
		t.Fatal("enable did not enable")
	}
	if dis := decodeBody[apitypes.Job](t, e.mustDo(op, "POST", "/api/v1/jobs/nightly/disable", "", 200)); dis.Enabled {
		t.Fatal("disable did not disable")
	}
	se := decodeBody[apitypes.Session](t, e.mustDo(op, "POST", "/api/v1/jobs/nightly/run", "", 202))
	if se.State != string(configdb.StateQueued) || se.JobName != "nightly" || se.ID == 0 {
		t.Fatalf("run returned session %+v", se)
	}
	if len(e.runner.started) != 1 || e.runner.started[0].ID != se.ID {
		t.Fatalf("runner started %+v, want session %d", e.runner.started, se.ID)
	}
	if _, err := e.store.CreateTask(context.Background(), configdb.Task{SessionID: se.ID, VM: "vm1", Disk: "0",
		State: configdb.StateQueued}); err != nil {
		t.Fatal(err)
	}
	shown := decodeBody[apitypes.Session](t, e.mustDo(op, "GET", "/api/v1/sessions/"+itoa(se.ID), "", 200))
	if len(shown.Tasks) != 1 || shown.Tasks[0].VM != "vm1" || shown.State != string(configdb.StateQueued) {
		t.Fatalf("session %+v", shown)
	}
	listed := decodeBody[[]apitypes.Session](t, e.mustDo(op, "GET", "/api/v1/sessions?job=nightly&state=queued", "", 200))
	if len(listed) != 1 || listed[0].ID != se.ID {
		t.Fatalf("sessions %+v", listed)
	}
	e.mustDo(op, "DELETE", "/api/v1/jobs/nightly", "", 204)
	checkMessage(t, e.do(op, "GET", "/api/v1/jobs/nightly", ""), 404, "not_found", "job nightly: not found")
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestRename(t *testing.T) {
	e := newEnv(t)
	op := e.tokens[configdb.RoleAdministrator]
	e.mustDo(op, "POST", "/api/v1/jobs", `{"name":"j2","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"}}`, 201)
	checkError(t, e.do(op, "PUT", "/api/v1/jobs/j2", `{"name":"j1","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"}}`), 409, "conflict")
	r := decodeBody[apitypes.Job](t, e.mustDo(op, "PUT", "/api/v1/jobs/j2", `{"name":"j3","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"}}`, 200))
	if r.Name != "j3" {
		t.Fatalf("renamed job %+v", r)
	}
}

func TestConflicts(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[configdb.RoleAdministrator]
	checkMessage(t, e.do(admin, "POST", "/api/v1/jobs", `{"name":"j1","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"},"password":"other"}`),
		http.StatusConflict, "conflict", "a job named j1 already exists")
	// A rename onto j1 with a new password must not touch j1's secret either.
	e.mustDo(admin, "POST", "/api/v1/jobs", `{"name":"j2","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"}}`, 201)
	checkMessage(t, e.do(admin, "PUT", "/api/v1/jobs/j2", `{"name":"j1","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"},"password":"other"}`),
		http.StatusConflict, "conflict", "a job named j1 already exists")
	checkSecret(t, e, "j1", fixturePassword)
	if names, _ := e.store.ListSecrets(context.Background()); len(names) != 1 {
		t.Fatalf("failed calls left secrets behind: %v", names)
	}
	checkMessage(t, e.do(admin, "POST", "/api/v1/sources", `{"name":"s1","kind":"file"}`), 409, "conflict",
		"a source named s1 already exists")
	checkMessage(t, e.do(admin, "POST", "/api/v1/tokens", `{"name":"victim","role":"viewer"}`), 409, "conflict",
		"an API token named victim already exists")
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[configdb.RoleAdministrator]
	bad := []struct{ method, path, body, code string }{
		{"POST", "/api/v1/jobs", `{"name":"x",`, "invalid_request"},
		{"POST", "/api/v1/jobs", ``, "invalid_request"},
		{"POST", "/api/v1/jobs", `{"name":"x","definition":{}} {}`, "invalid_request"},
		{"POST", "/api/v1/jobs", `{"name":"x","definition":{},"colour":"red"}`, "invalid_request"},
		{"POST", "/api/v1/jobs", `{"name":"../etc","definition":{}}`, "invalid_request"},
		{"POST", "/api/v1/jobs", `{"name":"","definition":{}}`, "invalid_request"},
		{"POST", "/api/v1/jobs", `{"name":"x"}`, "invalid_request"},
		{"POST", "/api/v1/jobs", `{"name":"x","definition":[1]}`, "invalid_request"},
		{"POST", "/api/v1/jobs", `{"name":"x","definition":{"password":1}}`, "invalid_request"},
		{"POST", "/api/v1/jobs", `{"name":"x","definition":{"a":"` + strings.Repeat("a", maxBody) + `"}}`, "request_too_large"},
		{"PUT", "/api/v1/jobs/j1", `{"definition":{},"extra":1}`, "invalid_request"},
		{"POST", "/api/v1/tokens", `{"name":"t","role":"root"}`, "invalid_request"},
		{"POST", "/api/v1/agents/join-tokens", `{"role":"viewer"}`, "invalid_request"},
		{"POST", "/api/v1/sources", `{"name":"s9"}`, "invalid_request"},
		{"GET", "/api/v1/agents?role=viewer", ``, "invalid_request"},
		{"GET", "/api/v1/sessions?state=sleeping", ``, "invalid_request"},
		{"GET", "/api/v1/sessions?limit=-1", ``, "invalid_request"},
		{"GET", "/api/v1/sessions/abc", ``, "invalid_request"},
	}
	for _, b := range bad {
		rec := e.do(admin, b.method, b.path, b.body)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s %s %.60s: status %d, want 400: %s", b.method, b.path, b.body, rec.Code, rec.Body)
			continue
		}
		checkError(t, rec, http.StatusBadRequest, b.code)
	}
	if _, err := e.store.GetJob(context.Background(), "x"); !errors.Is(err, configdb.ErrNotFound) {
		t.Fatalf("a bad request created job x: %v", err)
	}
}

func TestNotFound(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[configdb.RoleAdministrator]
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/jobs/nope", ""},
		{"PUT", "/api/v1/jobs/nope", `{"definition":{}}`},
		{"DELETE", "/api/v1/jobs/nope", ""},
		{"POST", "/api/v1/jobs/nope/run", ""},
		{"POST", "/api/v1/jobs/nope/enable", ""},
		{"GET", "/api/v1/sources/nope", ""},
		{"DELETE", "/api/v1/sources/nope", ""},
		{"DELETE", "/api/v1/tokens/nope", ""},
		{"GET", "/api/v1/sessions/999", ""},
	} {
		checkError(t, e.do(admin, c.method, c.path, c.body), http.StatusNotFound, "not_found")
	}
}

func TestRunnerFailure(t *testing.T) {
	e := newEnv(t)
	e.runner.err = errors.New("no proxy available")
	checkError(t, e.do(e.tokens[configdb.RoleAdministrator], "POST", "/api/v1/jobs/j1/run", ""), 500, "internal")
	se, err := e.store.GetSession(context.Background(), e.runner.started[0].ID)
	if err != nil || se.State != configdb.StateFailed || !strings.Contains(string(se.Result), "no proxy") {
		t.Fatalf("session after runner failure: %+v, %v", se, err)
	}
	if !strings.Contains(e.logs.String(), "no proxy available") {
		t.Fatalf("internal error not logged: %s", e.logs)
	}
}

// TestRunWhileRunning: a job runs one session at a time; a second run
// while one is queued or running is refused with 409, naming the session,
// and starts nothing.
func TestRunWhileRunning(t *testing.T) {
	e := newEnv(t)
	e.runner.keep = true
	op := e.tokens[configdb.RoleBackupOperator]
	// A running instant recovery of one of the job's points is no run of it.
	if _, err := e.store.CreateSession(context.Background(), "j1", "mount"); err != nil {
		t.Fatal(err)
	}
	first := decodeBody[apitypes.Session](t, e.mustDo(op, "POST", "/api/v1/jobs/j1/run", "", 202))
	rec := e.do(op, "POST", "/api/v1/jobs/j1/run", "")
	checkError(t, rec, http.StatusConflict, "already_running")
	if want := "job j1 is already running (session " + itoa(first.ID) + ")"; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("refusal %s, want it to say %q", rec.Body, want)
	}
	if len(e.runner.started) != 1 {
		t.Errorf("runner started %d sessions, want 1", len(e.runner.started))
	}
	if _, err := e.store.UpdateSession(context.Background(), first.ID, configdb.StateSuccess, nil); err != nil {
		t.Fatal(err)
	}
	e.mustDo(op, "POST", "/api/v1/jobs/j1/run", "", 202) // once it ended
}

func TestNoRunner(t *testing.T) {
	e := newEnv(t)
	e.srv = New(e.store, Config{})
	se := decodeBody[apitypes.Session](t, e.mustDo(e.tokens[configdb.RoleBackupOperator], "POST", "/api/v1/jobs/j1/run", "", 202))
	if se.State != string(configdb.StateQueued) {
		t.Fatalf("session %+v", se)
	}
}

func compact(t *testing.T, raw []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// checkSecret asserts that job's password reference holds want.
func checkSecret(t *testing.T, e *env, job, want string) {
	t.Helper()
	j, err := e.store.GetJob(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	ref := secretRef(j.Definition)
	got, err := e.store.GetSecret(context.Background(), ref)
	if err != nil || string(got) != want {
		t.Fatalf("job %s secret %q = %q, %v; want its password", job, ref, got, err)
	}
}

// TestJobHostileVMNames: a VM name no restore point can carry is refused
// when the job is stored (create and update), naming the field, with the
// same rule as `backup --name` (repo.ValidateVMName).
func TestJobHostileVMNames(t *testing.T) {
	e := newEnv(t)
	op := e.tokens[configdb.RoleBackupOperator]
	e.mustDo(op, "POST", "/api/v1/jobs", `{"name":"ok","definition":{"vms":[{"name":"vm-1.a_b@c+d","disks":["/images/vm-1.a_b@c+d.img"]}],"repository":"repo1"}}`, 201)
	names := map[string]string{
		"traversal":     "../../x",
		"slash":         "a/b",
		"newline":       "vm\nFAKE LOG LINE",
		"carriage ret":  "vm\r",
		"nul":           "vm\x00",
		"escape":        "vm\x1b[31m",
		"empty":         "",
		"dot":           ".",
		"dot dot":       "..",
		"leading dash":  "-rf",
		"space":         "my vm",
		"too long":      strings.Repeat("a", 129),
		"unicode slash": "a\u2215b",
	}
	for label, name := range names {
		t.Run(label, func(t *testing.T) {
			q, _ := json.Marshal(name)
			bodies := []struct{ method, path, body string }{
				{"POST", "/api/v1/jobs", `{"name":"j","definition":{"repository":"r","vms":[` + string(q) + `]}}`},
				{"POST", "/api/v1/jobs", `{"name":"j","definition":{"repository":"r","vms":[{"name":` + string(q) + `,"disks":["/a.img"]}]}}`},
				{"PUT", "/api/v1/jobs/ok", `{"definition":{"repository":"r","vms":["vm1",{"name":` + string(q) + `,"disks":["/a.img"]}]}}`},
			}
			for _, b := range bodies {
				rec := e.do(op, b.method, b.path, b.body)
				checkError(t, rec, http.StatusBadRequest, "invalid_request")
				if !strings.Contains(rec.Body.String(), "definition.vms[") || !strings.Contains(rec.Body.String(), "].name") {
					t.Errorf("%s %s: message %s does not name the field", b.method, b.path, rec.Body)
				}
			}
		})
	}
	if _, err := e.store.GetJob(context.Background(), "j"); !errors.Is(err, configdb.ErrNotFound) {
		t.Fatalf("a hostile VM name created job j: %v", err)
	}
	if j, _ := e.store.GetJob(context.Background(), "ok"); strings.Contains(string(j.Definition), "/a.img") {
		t.Fatalf("a hostile VM name updated job ok: %s", j.Definition)
	}
}

// TestSessionWaiting: a running session none of whose tasks runs shows why
// its first waiting task waits; once a task runs, or the session ended, it
// does not.
func TestSessionWaiting(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := e.tokens[configdb.RoleViewer]
	se, err := e.store.CreateSession(ctx, "j1", "backup")
	if err != nil {
		t.Fatal(err)
	}
	why := "waiting: no proxy can reach vm1 (none online offers source \"/images\" with direct)"
	task, err := e.store.CreateTask(ctx, configdb.Task{SessionID: se.ID, VM: "vm1", Disk: "0"})
	if err != nil {
		t.Fatal(err)
	}
	task.Error = why
	if task, err = e.store.UpdateTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	got := decodeBody[apitypes.Session](t, e.mustDo(op, "GET", "/api/v1/sessions/"+itoa(se.ID), "", 200))
	if got.State != "running" || got.Waiting != why {
		t.Fatalf("session %s waiting %q, want running, waiting %q", got.State, got.Waiting, why)
	}
	task.State, task.Error = configdb.StateRunning, ""
	if _, err := e.store.UpdateTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	got = decodeBody[apitypes.Session](t, e.mustDo(op, "GET", "/api/v1/sessions/"+itoa(se.ID), "", 200))
	if got.Waiting != "" {
		t.Errorf("a session with a running task waits: %q", got.Waiting)
	}
}

// TestJobNextAndLastRun: job show and job list give the next scheduled run
// (none when disabled or on demand) and the newest session.
func TestJobNextAndLastRun(t *testing.T) {
	e := newEnv(t)
	op := e.tokens[configdb.RoleBackupOperator]
	now := time.Date(2026, 11, 22, 6, 0, 0, 0, time.UTC) // newEnv's clock
	e.mustDo(op, "POST", "/api/v1/jobs",
		`{"name":"nightly","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"},"schedule":"0 2 * * *"}`, 201)
	j := decodeBody[apitypes.Job](t, e.mustDo(op, "GET", "/api/v1/jobs/nightly", "", 200))
	if j.NextRun == nil || !j.NextRun.After(now) || j.NextRun.Sub(now) > 24*time.Hour ||
		j.NextRun.In(time.Local).Hour() != 2 || j.NextRun.In(time.Local).Minute() != 0 {
		t.Fatalf("next run %v, want the next 02:00 after %v", j.NextRun, now)
	}
	if j.LastRun != nil {
		t.Fatalf("a job that never ran has a last run: %+v", j.LastRun)
	}
	se := decodeBody[apitypes.Session](t, e.mustDo(op, "POST", "/api/v1/jobs/nightly/run", "", 202))
	all := decodeBody[[]apitypes.Job](t, e.mustDo(op, "GET", "/api/v1/jobs", "", 200))
	var found bool
	for _, j := range all {
		switch j.Name {
		case "nightly":
			found = true
			if j.LastRun == nil || j.LastRun.Session != se.ID || j.LastRun.State != "success" || j.LastRun.Ended == nil {
				t.Errorf("listed last run %+v, want session %d, success", j.LastRun, se.ID)
			}
		case "j1":
			if j.NextRun != nil {
				t.Errorf("a job without a schedule runs next at %v", j.NextRun)
			}
		}
	}
	if !found {
		t.Fatal("nightly not listed")
	}
	e.mustDo(op, "POST", "/api/v1/jobs/nightly/disable", "", 200)
	if j := decodeBody[apitypes.Job](t, e.mustDo(op, "GET", "/api/v1/jobs/nightly", "", 200)); j.NextRun != nil {
		t.Errorf("a disabled job runs next at %v", j.NextRun)
	}
}

// TestMaintenanceJob: a maintenance job is stored with its kind and
// checked as one (some work, no VMs).
func TestMaintenanceJob(t *testing.T) {
	e := newEnv(t)
	op := e.tokens[configdb.RoleBackupOperator]
	j := decodeBody[apitypes.Job](t, e.mustDo(op, "POST", "/api/v1/jobs",
		`{"name":"maint","kind":"maintenance","definition":{"repository":"repo1","maintenance":{"gc":true,"verify":true,"read_data_percent":10}},"schedule":"0 4 * * 0"}`, 201))
	if j.Kind != "maintenance" {
		t.Fatalf("job %+v", j)
	}
	checkError(t, e.do(op, "POST", "/api/v1/jobs", `{"name":"m2","kind":"maintenance","definition":{"repository":"repo1"}}`),
		400, "invalid_request")
	checkError(t, e.do(op, "POST", "/api/v1/jobs", `{"name":"m3","definition":{"repository":"repo1","maintenance":{"gc":true}}}`),
		400, "invalid_request")
}
