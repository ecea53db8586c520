package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// endedSession records a session of job in state with result.
func endedSession(t *testing.T, e *env, job, kind string, st configdb.State, result string) int64 {
	t.Helper()
	se, err := e.store.CreateSession(context.Background(), job, kind)
	if err != nil {
		t.Fatal(err)
	}
	var res json.RawMessage
	if result != "" {
		res = json.RawMessage(result)
	}
	if _, err := e.store.UpdateSession(context.Background(), se.ID, st, res); err != nil {
		t.Fatal(err)
	}
	return se.ID
}

// TestRetrySession: a retry starts a new session of the job whose
// definition lists only the VMs that failed (in the job's order, their
// entries as stored, every other key kept), audited; sessions that cannot
// be retried are refused with the reason.
func TestRetrySession(t *testing.T) {
	e := newEnv(t)
	e.runner.keep = true
	op := e.tokens[configdb.RoleBackupOperator]
	e.mustDo(op, "POST", "/api/v1/jobs", `{"name":"multi","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]},{"name":"vm2","disks":["/images/vm2.img"]},`+
		`{"name":"vm3","disks":["/images/vm3.img"]}],"repository":"repo1","retention":{"keep_last":3}}}`, 201)
	failed := endedSession(t, e, "multi", "backup", configdb.StateFailed, `{"status":"failed","vms":[`+
		`{"name":"vm3","status":"failed"},{"name":"vm1","status":"success"},{"name":"vm2","status":"failed"}]}`)

	se := decodeBody[apitypes.Session](t, e.mustDo(op, "POST", "/api/v1/sessions/"+itoa(failed)+"/retry", "", 202))
	if se.JobName != "multi" || se.State != string(configdb.StateQueued) || se.ID == failed {
		t.Fatalf("retry session %+v", se)
	}
	if len(e.runner.started) != 1 || e.runner.started[0].ID != se.ID {
		t.Fatalf("runner started %+v", e.runner.started)
	}
	want := `{"repository":"repo1","retention":{"keep_last":3},"vms":[{"name":"vm2","disks":["/images/vm2.img"]},` +
		`{"name":"vm3","disks":["/images/vm3.img"]}]}`
	if got := compact(t, e.runner.jobs[0].Definition); got != want {
		t.Fatalf("retry definition\n%s\nwant\n%s", got, want)
	}
	// The job itself is unchanged.
	if j := decodeBody[apitypes.Job](t, e.mustDo(op, "GET", "/api/v1/jobs/multi", "", 200)); !strings.Contains(string(j.Definition), "vm1") {
		t.Fatalf("retry changed the job: %s", j.Definition)
	}
	audit := decodeBody[[]apitypes.AuditEntry](t, e.mustDo(e.tokens[configdb.RoleAdministrator], "GET",
		"/api/v1/audit?action=session.retry", "", 200))
	if len(audit) != 1 || audit[0].Target != itoa(failed) || !strings.Contains(compact(t, audit[0].Details), `"vms":["vm3","vm2"]`) {
		t.Fatalf("audit %+v", audit)
	}
	// One run of a job at a time.
	rec := e.do(op, "POST", "/api/v1/sessions/"+itoa(failed)+"/retry", "")
	checkError(t, rec, http.StatusConflict, "already_running")

	e.mustDo(op, "POST", "/api/v1/jobs", `{"name":"picked","definition":{"select":[{"source":"s1"}],"repository":"repo1"}}`, 201)
	tests := []struct {
		name, job, kind string
		state           configdb.State
		result          string
		msg             string
	}{
		{"no failed VM", "j1", "backup", configdb.StateWarning, `{"vms":[{"name":"vm1","status":"warning"}]}`, "no failed VM"},
		{"still running", "j1", "backup", configdb.StateRunning, "", "state running"},
		{"a restore", "j1", "restore", configdb.StateFailed, `{"vms":[{"name":"vm1","status":"failed"}]}`, "restore session"},
		{"VM gone from the job", "j1", "backup", configdb.StateFailed, `{"vms":[{"name":"old","status":"failed"}]}`, "no longer has"},
		{"a selection job", "picked", "backup", configdb.StateFailed, `{"vms":[{"name":"vm1","status":"failed"}]}`, "selects its VMs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := endedSession(t, e, tt.job, tt.kind, tt.state, tt.result)
			rec := e.do(op, "POST", "/api/v1/sessions/"+itoa(id)+"/retry", "")
			checkError(t, rec, http.StatusConflict, "not_retryable")
			if !strings.Contains(rec.Body.String(), tt.msg) {
				t.Errorf("refusal %s, want it to say %q", rec.Body, tt.msg)
			}
		})
	}
	if len(e.runner.started) != 1 {
		t.Errorf("refused retries started sessions: %+v", e.runner.started)
	}
	checkError(t, e.do(op, "POST", "/api/v1/sessions/x/retry", ""), http.StatusBadRequest, "invalid_request")
	checkError(t, e.do(op, "POST", "/api/v1/sessions/999/retry", ""), http.StatusNotFound, "not_found")
}
