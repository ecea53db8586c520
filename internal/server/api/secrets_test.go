package api

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// TestInlinePasswordNeverEchoed: passwords given inline are stored as
// secrets and appear in no response body, audit entry or log line.
func TestInlinePasswordNeverEchoed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op, admin := e.tokens[configdb.RoleBackupOperator], e.tokens[configdb.RoleAdministrator]
	const pw2, pw3, pw4 = "second-S3cret!", "third-S3cret!", "source-S3cret!"
	created := decodeBody[apitypes.Job](t, e.mustDo(op, "POST", "/api/v1/jobs",
		`{"name":"inline","definition":{"vms":[{"name":"v","disks":["/images/v.img"]}],"repository":"repo1","password":"`+pw2+`"}}`, 201))
	if !strings.HasPrefix(created.PasswordRef, "job/inline/password-") || strings.Contains(string(created.Definition), `"password"`) {
		t.Fatalf("created job %+v, definition %s", created, created.Definition)
	}
	// Editing without a password keeps the reference; with one replaces it.
	j1 := decodeBody[apitypes.Job](t, e.mustDo(op, "GET", "/api/v1/jobs/j1", "", 200))
	kept := decodeBody[apitypes.Job](t, e.mustDo(op, "PUT", "/api/v1/jobs/j1", `{"definition":{"vms":[{"name":"vm9","disks":["/images/vm9.img"]}],"repository":"repo1"}}`, 200))
	if kept.PasswordRef == "" || kept.PasswordRef != j1.PasswordRef {
		t.Fatalf("PUT without password lost the reference: %+v", kept)
	}
	e.mustDo(op, "PUT", "/api/v1/jobs/inline", `{"definition":{"vms":[{"name":"v","disks":["/images/v.img"]}],"repository":"repo1"},"password":"`+pw3+`"}`, 200)
	e.mustDo(op, "POST", "/api/v1/sources", `{"name":"vc","kind":"hyperv","password":"`+pw4+`"}`, 201)
	for _, path := range []string{"/api/v1/jobs", "/api/v1/jobs/j1", "/api/v1/jobs/inline", "/api/v1/sources",
		"/api/v1/sources/vc", "/api/v1/audit?limit=1000"} {
		e.mustDo(admin, "GET", path, "", 200)
	}
	e.mustDo(op, "POST", "/api/v1/jobs/inline/run", "", 202)

	checkSecret(t, e, "j1", fixturePassword)
	checkSecret(t, e, "inline", pw3)
	vc, err := e.store.GetSource(ctx, "vc")
	if got, err2 := e.store.GetSecret(ctx, secretRef(vc.Definition)); err != nil || err2 != nil || string(got) != pw4 {
		t.Errorf("source secret %q, %v %v", got, err, err2)
	}
	if _, err := e.store.GetSecret(ctx, created.PasswordRef); err == nil {
		t.Error("replacing the password kept the old secret")
	}
	entries, err := e.store.ListAudit(ctx, configdb.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	auditJSON, _ := json.Marshal(entries)
	jobs, _ := e.store.ListJobs(ctx)
	jobsJSON, _ := json.Marshal(jobs)
	for _, pw := range []string{fixturePassword, pw2, pw3, pw4} {
		for where, text := range map[string]string{"a response body": e.bodies.String(),
			"the audit log": string(auditJSON), "the server log": e.logs.String(), "a stored job": string(jobsJSON)} {
			if strings.Contains(text, pw) {
				t.Errorf("password %q appears in %s", pw, where)
			}
		}
	}
	if !strings.Contains(e.bodies.String(), j1.PasswordRef) {
		t.Error("responses do not show the password reference")
	}
	e.mustDo(op, "DELETE", "/api/v1/jobs/inline", "", 204)
	e.mustDo(op, "DELETE", "/api/v1/sources/vc", "", 204)
	names, err := e.store.ListSecrets(ctx)
	if err != nil || len(names) != 1 || names[0] != j1.PasswordRef {
		t.Errorf("secrets after deletes: %v, %v; want only j1's", names, err)
	}
	// Another object's managed secret cannot be borrowed.
	checkError(t, e.do(op, "POST", "/api/v1/jobs", `{"name":"thief","definition":{"vms":[{"name":"v","disks":["/images/v.img"]}],"repository":"repo1","password_secret":"`+
		j1.PasswordRef+`"}}`), 400, "invalid_request")
}

func TestTokensShownOnce(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[configdb.RoleAdministrator]
	tok := decodeBody[map[string]string](t, e.mustDo(admin, "POST", "/api/v1/tokens", `{"name":"ci","role":"viewer"}`, 201))
	if !strings.HasPrefix(tok["token"], "hfa_") {
		t.Fatalf("create token returned %v", tok)
	}
	e.mustDo(tok["token"], "GET", "/api/v1/jobs", "", 200)
	list := e.mustDo(admin, "GET", "/api/v1/tokens", "", 200).Body.String()
	if strings.Contains(list, tok["token"]) || !strings.Contains(list, `"ci"`) {
		t.Fatalf("token list: %s", list)
	}
	jt := decodeBody[map[string]string](t, e.mustDo(admin, "POST", "/api/v1/agents/join-tokens", `{"role":"proxy"}`, 201))
	if !strings.HasPrefix(jt["token"], "hfj_") || jt["expires"] != "2026-11-22T07:00:00Z" {
		t.Fatalf("join token %v", jt)
	}
	if role, err := e.store.ConsumeJoinToken(context.Background(), jt["token"], "proxy1"); err != nil || role != "proxy" {
		t.Fatalf("join token does not work: %q, %v", role, err)
	}
	e.mustDo(admin, "DELETE", "/api/v1/tokens/ci", "", 204)
	checkError(t, e.do(tok["token"], "GET", "/api/v1/jobs", ""), 401, "unauthorized")
	audit := e.mustDo(admin, "GET", "/api/v1/audit?limit=1000", "", 200).Body.String()
	if strings.Contains(audit, tok["token"]) || strings.Contains(audit, jt["token"]) {
		t.Fatal("a token appears in the audit log")
	}
}

// TestGuestSSHKeySealed: a guest SSH key given inline is sealed like a
// password, kept on edits without one, replaced with a new one and dropped
// with the job; it never appears in a response.
func TestGuestSSHKeySealed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := e.tokens[configdb.RoleBackupOperator]
	const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-bytes\n-----END OPENSSH PRIVATE KEY-----\n"
	keyJSON, _ := json.Marshal(key)
	e.mustDo(op, "POST", "/api/v1/jobs", `{"name":"g","definition":{"vms":[{"name":"v","disks":["/images/v.img"]}],"repository":"repo1","guest_ssh_key":`+string(keyJSON)+`}}`, 201)
	j, err := e.store.GetJob(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	ref := sshKeyRef(j.Definition)
	if !strings.HasPrefix(ref, "job/g/ssh-key-") || strings.Contains(string(j.Definition), "secret-key-bytes") {
		t.Fatalf("definition %s", j.Definition)
	}
	if got, err := e.store.GetSecret(ctx, ref); err != nil || string(got) != key {
		t.Fatalf("secret %q %v", got, err)
	}
	e.mustDo(op, "PUT", "/api/v1/jobs/g", `{"definition":{"vms":[{"name":"v2","disks":["/images/v2.img"]}],"repository":"repo1"}}`, 200)
	if j, _ = e.store.GetJob(ctx, "g"); sshKeyRef(j.Definition) != ref {
		t.Fatalf("edit without a key lost it: %s", j.Definition)
	}
	e.mustDo(op, "DELETE", "/api/v1/jobs/g", "", 204)
	if _, err := e.store.GetSecret(ctx, ref); err == nil {
		t.Error("deleting the job kept its SSH key")
	}
	if strings.Contains(e.bodies.String(), "secret-key-bytes") || strings.Contains(e.logs.String(), "secret-key-bytes") {
		t.Error("the key appears in a response or log")
	}
}

// sshKeyRef returns the guest SSH key secret a stored definition names.
func sshKeyRef(def json.RawMessage) string {
	d, _ := jobdef.Parse(def)
	return d.GuestKeySecret
}

// TestCopyPasswordSealed: a copy job's target password given inline is
// sealed like the job's, kept on edits without one, replaced (the old
// secret dropped) by a new one, dropped with the job, and never shown.
func TestCopyPasswordSealed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := e.tokens[configdb.RoleBackupOperator]
	def := func(pw string) string {
		inline := ""
		if pw != "" {
			inline = `,"to_password":"` + pw + `"`
		}
		return `{"definition":{"repository":"repo1","copy":{"to_repository":"offsite"` + inline + `}}}`
	}
	e.mustDo(op, "POST", "/api/v1/jobs", `{"name":"c","kind":"copy",`+def("first-T0rget")[1:], 201)
	toRef := func() string {
		j, err := e.store.GetJob(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(j.Definition), "T0rget") {
			t.Fatalf("stored definition holds the password: %s", j.Definition)
		}
		return copyPasswordRef(mustParse(t, j.Definition))
	}
	first := toRef()
	if got, err := e.store.GetSecret(ctx, first); !strings.HasPrefix(first, "job/c/to-password-") || err != nil || string(got) != "first-T0rget" {
		t.Fatalf("secret %q: %q %v", first, got, err)
	}
	e.mustDo(op, "PUT", "/api/v1/jobs/c", `{"kind":"copy",`+def("")[1:], 200)
	if toRef() != first {
		t.Fatal("an edit without a target password lost it")
	}
	e.mustDo(op, "PUT", "/api/v1/jobs/c", `{"kind":"copy",`+def("second-T0rget")[1:], 200)
	second := toRef()
	if got, err := e.store.GetSecret(ctx, second); second == first || err != nil || string(got) != "second-T0rget" {
		t.Fatalf("new secret %q: %q %v", second, got, err)
	}
	if _, err := e.store.GetSecret(ctx, first); err == nil {
		t.Error("replacing the target password kept the old secret")
	}
	e.mustDo(op, "GET", "/api/v1/jobs/c", "", 200)
	e.mustDo(op, "DELETE", "/api/v1/jobs/c", "", 204)
	if _, err := e.store.GetSecret(ctx, second); err == nil {
		t.Error("deleting the job kept its target password")
	}
	if strings.Contains(e.bodies.String(), "T0rget") || strings.Contains(e.logs.String(), "T0rget") {
		t.Error("the target password appears in a response or log")
	}
}

func mustParse(t *testing.T, raw json.RawMessage) jobdef.Definition {
	t.Helper()
	d, err := jobdef.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
