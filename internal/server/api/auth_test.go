package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// sample is a request that succeeds on a fresh env for an allowed role.
type sample struct {
	path, body string
	perm       Permission // the policy the route table must declare
}

// samples has one request per route, keyed "METHOD PATTERN".
var samples = map[string]sample{
	"GET /api/v1/health":                     {"/api/v1/health", "", PermPublic},
	"GET /api/v1/openapi.json":               {"/api/v1/openapi.json", "", PermRead},
	"GET /metrics":                           {"/metrics", "", PermRead},
	"GET /api/v1/dashboard":                  {"/api/v1/dashboard", "", PermRead},
	"POST /api/v1/tokens":                    {"/api/v1/tokens", `{"name":"new-token","role":"viewer"}`, PermAdmin},
	"GET /api/v1/tokens":                     {"/api/v1/tokens", "", PermAdmin},
	"DELETE /api/v1/tokens/{name}":           {"/api/v1/tokens/victim", "", PermAdmin},
	"POST /api/v1/agents/join-tokens":        {"/api/v1/agents/join-tokens", `{"role":"proxy"}`, PermAdmin},
	"POST /api/v1/agents/join":               {"/api/v1/agents/join", sampleJoinBody, PermJoinToken},
	"POST /api/v1/agents/heartbeat":          {"/api/v1/agents/heartbeat", `{}`, PermAgent},
	"GET /api/v1/agents":                     {"/api/v1/agents?role=proxy", "", PermRead},
	"POST /api/v1/sources":                   {"/api/v1/sources", `{"name":"s2","kind":"nbd","definition":{"uri":"nbd://h/x"}}`, PermBackup},
	"GET /api/v1/sources":                    {"/api/v1/sources", "", PermRead},
	"GET /api/v1/sources/{name}":             {"/api/v1/sources/s1", "", PermRead},
	"DELETE /api/v1/sources/{name}":          {"/api/v1/sources/s1", "", PermBackup},
	"GET /api/v1/sources/{name}/vms":         {"/api/v1/sources/s1/vms", "", PermBackup},
	"GET /api/v1/schedule/preview":           {"/api/v1/schedule/preview?schedule=daily+02:00", "", PermRead},
	"POST /api/v1/jobs":                      {"/api/v1/jobs", `{"name":"j2","definition":{"vms":[{"name":"vm2","disks":["/images/vm2.img"]}],"repository":"repo1"}}`, PermBackup},
	"GET /api/v1/jobs":                       {"/api/v1/jobs", "", PermRead},
	"GET /api/v1/jobs/{name}":                {"/api/v1/jobs/j1", "", PermRead},
	"PUT /api/v1/jobs/{name}":                {"/api/v1/jobs/j1", `{"definition":{"vms":[{"name":"vm1","disks":["/images/vm1.img"]},{"name":"vm3","disks":["/images/vm3.img"]}],"repository":"repo1"},"schedule":"0 2 * * *"}`, PermBackup},
	"DELETE /api/v1/jobs/{name}":             {"/api/v1/jobs/j1", "", PermBackup},
	"POST /api/v1/jobs/{name}/enable":        {"/api/v1/jobs/j1/enable", "", PermBackup},
	"POST /api/v1/jobs/{name}/disable":       {"/api/v1/jobs/j1/disable", "", PermBackup},
	"POST /api/v1/jobs/{name}/run":           {"/api/v1/jobs/j1/run", "", PermBackup},
	"GET /api/v1/sessions":                   {"/api/v1/sessions?job=j1", "", PermRead},
	"POST /api/v1/sessions/{id}/cancel":      {"/api/v1/sessions/1/cancel", "", PermBackup},
	"GET /api/v1/sessions/{id}":              {"/api/v1/sessions/1", "", PermRead},
	"POST /api/v1/agents/tasks/next":         {"/api/v1/agents/tasks/next", `{}`, PermAgent},
	"POST /api/v1/agents/tasks/progress":     {"/api/v1/agents/tasks/progress", `{}`, PermAgent},
	"POST /api/v1/agents/tasks/result":       {"/api/v1/agents/tasks/result", `{}`, PermAgent},
	"GET /api/v1/points":                     {"/api/v1/points?vm=vm1", "", PermRead},
	"GET /api/v1/points/{id}":                {"/api/v1/points/p1", "", PermRead},
	"POST /api/v1/restores":                  {"/api/v1/restores", `{"point":"p1","disk":0,"target":"/tmp/x.img"}`, PermRestore},
	"POST /api/v1/instant-recoveries":        {"/api/v1/instant-recoveries", `{"point":"p1","nbd":"127.0.0.1:0"}`, PermRestore},
	"POST /api/v1/publications":              {"/api/v1/publications", `{"point":"p1"}`, PermRestore},
	"GET /api/v1/audit":                      {"/api/v1/audit", "", PermAdmin},
	"POST /api/v1/login":                     {"/api/v1/login", `{"user":"nobody","password":"not-the-password"}`, PermLogin},
	"POST /api/v1/logout":                    {"/api/v1/logout", "", PermRead},
	"GET /api/v1/me":                         {"/api/v1/me", "", PermRead},
	"PUT /api/v1/me/password":                {"/api/v1/me/password", `{"current":"x","new":"another-long-password"}`, PermSession},
	"POST /api/v1/users":                     {"/api/v1/users", `{"name":"carol","role":"viewer","password":"carol-long-password"}`, PermAdmin},
	"GET /api/v1/users":                      {"/api/v1/users", "", PermAdmin},
	"GET /api/v1/users/{name}":               {"/api/v1/users/u1", "", PermAdmin},
	"DELETE /api/v1/users/{name}":            {"/api/v1/users/u1", "", PermAdmin},
	"PUT /api/v1/users/{name}/password":      {"/api/v1/users/u1/password", `{"password":"another-long-password"}`, PermAdmin},
	"POST /api/v1/users/{name}/totp":         {"/api/v1/users/u1/totp", "", PermAdmin},
	"DELETE /api/v1/users/{name}/totp":       {"/api/v1/users/u1/totp", "", PermAdmin},
	"POST /api/v1/notifications":             {"/api/v1/notifications", `{"name":"n2","kind":"webhook","webhook":{"url":"https://hooks.example.com/x"},"secret":"k"}`, PermAdmin},
	"GET /api/v1/notifications":              {"/api/v1/notifications", "", PermRead},
	"GET /api/v1/notifications/{name}":       {"/api/v1/notifications/n1", "", PermRead},
	"PUT /api/v1/notifications/{name}":       {"/api/v1/notifications/n1", `{"kind":"webhook","webhook":{"url":"https://hooks.example.com/y"}}`, PermAdmin},
	"DELETE /api/v1/notifications/{name}":    {"/api/v1/notifications/n1", "", PermAdmin},
	"POST /api/v1/notifications/{name}/test": {"/api/v1/notifications/n1/test", "", PermAdmin},
	"GET /api/v1/notification-outbox":        {"/api/v1/notification-outbox?target=n1", "", PermRead},
	"GET /api/v1/notification-outbox/{id}":   {"/api/v1/notification-outbox/1", "", PermRead},
	"POST /api/v1/sessions/{id}/retry":       {"/api/v1/sessions/2/retry", "", PermBackup},
}

// TestRoutesRoles checks every route without a token, with an invalid one
// and with each role: 401, or 2xx / 403 exactly as the route table says.
func TestRoutesRoles(t *testing.T) {
	shared := newEnv(t) // denials do not change state
	routes := shared.srv.Routes()
	if len(routes) != len(samples) {
		t.Errorf("%d routes, %d samples: every route needs a sample", len(routes), len(samples))
	}
	for _, rt := range routes {
		key := rt.Method + " " + rt.Path
		smp, ok := samples[key]
		if !ok {
			t.Errorf("no sample request for route %s", key)
			continue
		}
		if rt.Perm != smp.perm {
			t.Errorf("route %s needs permission %q, want %q", key, rt.Perm, smp.perm)
		}
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			if rt.Perm == PermJoinToken || rt.Perm == PermAgent || rt.Perm == PermLogin {
				checkNoToken(t, shared, rt, smp)
				return
			}
			checkAnonymous(t, shared, rt, smp)
			if rt.Perm == PermSession { // no token of any role; TestChangeOwnPassword covers sessions
				for _, role := range allRoles {
					checkError(t, shared.do(shared.tokens[role], rt.Method, smp.path, smp.body), http.StatusForbidden, "forbidden")
				}
				return
			}
			for _, role := range allRoles {
				if !rt.Perm.Allows(role) {
					rec := shared.do(shared.tokens[role], rt.Method, smp.path, smp.body)
					checkError(t, rec, http.StatusForbidden, "forbidden")
					continue
				}
				e := newEnv(t) // a fresh database: allowed calls mutate
				rec := e.do(e.tokens[role], rt.Method, smp.path, smp.body)
				if rec.Code < 200 || rec.Code > 299 {
					t.Errorf("%s as %s: status %d, want 2xx: %s", key, role, rec.Code, rec.Body)
				}
			}
		})
	}
}

// checkNoToken checks a route no API token opens: with a bogus join token,
// without a client certificate or with a wrong password it answers 401
// whatever the bearer token (agent_test.go and login_test.go cover the
// successful calls).
func checkNoToken(t *testing.T, e *env, rt Route, smp sample) {
	t.Helper()
	body := smp.body
	if body == sampleJoinBody {
		body = joinBody(t, "hfj_not-a-real-join-token", "proxy", "p1", "")
	}
	toks := []string{"", "garbage"}
	for _, r := range allRoles {
		toks = append(toks, e.tokens[r])
	}
	for _, tok := range toks {
		checkError(t, e.do(tok, rt.Method, smp.path, body), http.StatusUnauthorized, "unauthorized")
	}
	if rt.Perm.Roles() != nil {
		t.Errorf("%s allows token roles %v", rt.Perm, rt.Perm.Roles())
	}
}

func checkAnonymous(t *testing.T, e *env, rt Route, smp sample) {
	t.Helper()
	for _, tok := range []string{"", "hfa_not-a-real-token", "garbage"} {
		rec := e.do(tok, rt.Method, smp.path, smp.body)
		if rt.Perm == PermPublic {
			if rec.Code != http.StatusOK {
				t.Errorf("public %s %s with token %q: status %d", rt.Method, rt.Path, tok, rec.Code)
			}
			continue
		}
		checkError(t, rec, http.StatusUnauthorized, "unauthorized")
		if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without WWW-Authenticate: Bearer: %q", rec.Header().Get("WWW-Authenticate"))
		}
	}
}

func TestPermissionRoles(t *testing.T) {
	admin, backup, restore, viewer := configdb.RoleAdministrator, configdb.RoleBackupOperator,
		configdb.RoleRestoreOperator, configdb.RoleViewer
	want := map[Permission][]configdb.Role{
		PermPublic:  {admin, backup, restore, viewer},
		PermRead:    {admin, backup, restore, viewer},
		PermBackup:  {admin, backup},
		PermRestore: {admin, restore},
		PermAdmin:   {admin},
	}
	for p, roles := range want {
		got := p.Roles()
		if len(got) != len(roles) {
			t.Errorf("%s allows %v, want %v", p, got, roles)
			continue
		}
		for i := range got {
			if got[i] != roles[i] {
				t.Errorf("%s allows %v, want %v", p, got, roles)
			}
		}
	}
	if Permission("bogus").Allows(admin) || PermRead.Allows(configdb.Role("root")) {
		t.Error("unknown permission or role allowed")
	}
}

func TestViewerCannotRunJob(t *testing.T) {
	e := newEnv(t)
	rec := e.do(e.tokens[configdb.RoleViewer], "POST", "/api/v1/jobs/j1/run", "")
	checkError(t, rec, http.StatusForbidden, "forbidden")
	if len(e.runner.started) != 0 {
		t.Fatal("runner called for a forbidden request")
	}
}

func TestUnmatchedRequests(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[configdb.RoleAdministrator]
	checkError(t, e.do(admin, "GET", "/api/v1/nothing", ""), http.StatusNotFound, "not_found")
	rec := e.do(admin, "PATCH", "/api/v1/jobs/j1", "{}")
	checkError(t, rec, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := rec.Header().Get("Allow"); !strings.Contains(allow, "PUT") || !strings.Contains(allow, "DELETE") {
		t.Errorf("Allow %q", allow)
	}
	checkError(t, e.do("", "POST", "/api/v1/health", ""), http.StatusMethodNotAllowed, "method_not_allowed")
}
