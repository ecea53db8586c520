package api

import (
	"context"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

func TestAuditMutations(t *testing.T) {
	e := newEnv(t)
	op, admin := e.tokens[configdb.RoleBackupOperator], e.tokens[configdb.RoleAdministrator]
	e.mustDo(op, "POST", "/api/v1/jobs", `{"name":"a1","definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]}],"repository":"repo1"}}`, 201)
	e.mustDo(op, "PUT", "/api/v1/jobs/a1", `{"definition":{"vms":[{"name":"vm2","disks":["/images/vm2.img"]}],"repository":"repo1"}}`, 200)
	e.mustDo(op, "POST", "/api/v1/jobs/a1/disable", "", 200)
	e.mustDo(op, "POST", "/api/v1/jobs/a1/enable", "", 200)
	e.mustDo(op, "POST", "/api/v1/jobs/a1/run", "", 202)
	e.mustDo(op, "DELETE", "/api/v1/jobs/a1", "", 204)
	e.mustDo(op, "POST", "/api/v1/sources", `{"name":"s5","kind":"file"}`, 201)
	e.mustDo(op, "DELETE", "/api/v1/sources/s5", "", 204)
	e.mustDo(admin, "POST", "/api/v1/tokens", `{"name":"t5","role":"viewer"}`, 201)
	e.mustDo(admin, "DELETE", "/api/v1/tokens/t5", "", 204)
	e.mustDo(admin, "POST", "/api/v1/agents/join-tokens", `{"role":"repository","ttl_seconds":60}`, 201)
	e.mustDo(op, "GET", "/api/v1/jobs", "", 200) // reads are not audited

	entries, err := e.store.ListAudit(context.Background(), configdb.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, en := range entries {
		got[en.Action+" "+en.Target] = en.Actor
	}
	want := map[string]string{
		"job.create a1": "tok-backup_operator", "job.update a1": "tok-backup_operator",
		"job.disable a1": "tok-backup_operator", "job.enable a1": "tok-backup_operator",
		"job.run a1": "tok-backup_operator", "job.delete a1": "tok-backup_operator",
		"source.create s5": "tok-backup_operator", "source.delete s5": "tok-backup_operator",
		"token.create t5": "tok-administrator", "token.delete t5": "tok-administrator",
		"jointoken.create repository": "tok-administrator",
	}
	for k, actor := range want {
		if got[k] != actor {
			t.Errorf("audit %q: actor %q, want %q", k, got[k], actor)
		}
	}
	// fixture: j1, s1 by the administrator; the above: 11.
	if len(entries) != 2+len(want) {
		t.Errorf("%d audit entries, want %d: %v", len(entries), 2+len(want), got)
	}
	// The API lists them for administrators, filtered.
	list := decodeBody[[]apitypes.AuditEntry](t, e.mustDo(admin, "GET", "/api/v1/audit?action=job.run", "", 200))
	if len(list) != 1 || list[0].Target != "a1" || !strings.Contains(string(list[0].Details), "session") {
		t.Fatalf("audit list %+v", list)
	}
}
