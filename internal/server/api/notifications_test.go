package api

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// TestNotificationTargets: the secret is sealed and never returned (a
// viewer lists targets without it), validation refuses plain transports
// without insecure, an edit keeps or replaces the secret, removal drops
// it, and the test route reports the delivery error.
func TestNotificationTargets(t *testing.T) {
	e := newEnv(t)
	admin, viewer := e.tokens[configdb.RoleAdministrator], e.tokens[configdb.RoleViewer]
	ctx := t.Context()
	body := `{"name":"mail","kind":"smtp","smtp":{"host":"mail.example.com","from":"b@example.com","to":["ops@example.com"],"username":"u"},"secret":"smtp-Pa55-secret","summary_at":"06:30"}`
	got := decodeBody[apitypes.NotificationTarget](t, e.mustDo(admin, "POST", "/api/v1/notifications", body, 201))
	if !got.HasSecret || got.SMTP.Port != 587 || got.SMTP.TLS != "starttls" || got.SummaryAt != "06:30" {
		t.Fatalf("created: %+v", got)
	}
	st, _ := e.store.GetNotificationTarget(ctx, "mail")
	if v, err := e.store.GetSecret(ctx, st.Secret); err != nil || string(v) != "smtp-Pa55-secret" || !strings.HasPrefix(st.Secret, "notification/mail/") {
		t.Fatalf("sealed secret %q: %q %v", st.Secret, v, err)
	}
	e.mustDo(viewer, "GET", "/api/v1/notifications", "", 200)
	e.mustDo(viewer, "GET", "/api/v1/notifications/mail", "", 200)

	for _, tc := range []struct{ body, msg string }{
		{`{"name":"x","kind":"smtp","smtp":{"host":"h","tls":"none","from":"b@example.com","to":["o@example.com"]}}`, "give insecure"},
		{`{"name":"x","kind":"webhook","webhook":{"url":"http://h/x"}}`, "give insecure"},
		{`{"name":"x y","kind":"webhook","webhook":{"url":"https://h/x"}}`, "name"},
		{`{"name":"x","kind":"webhook","webhook":{"url":"https://h/x"},"password":"p"}`, "unknown field"},
	} {
		rec := e.do(admin, "POST", "/api/v1/notifications", tc.body)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.msg) {
			t.Errorf("%s: %d %s", tc.body, rec.Code, rec.Body)
		}
	}
	e.mustDo(admin, "POST", "/api/v1/notifications", body, http.StatusConflict)

	// An edit without a secret keeps it; with one it replaces it.
	edit := strings.Replace(strings.Replace(body, `,"secret":"smtp-Pa55-secret"`, "", 1), "mail.example.com", "mail2.example.com", 1)
	e.mustDo(admin, "PUT", "/api/v1/notifications/mail", edit, 200)
	st2, _ := e.store.GetNotificationTarget(ctx, "mail")
	if st2.Secret != st.Secret {
		t.Fatalf("secret changed by an edit without one: %q → %q", st.Secret, st2.Secret)
	}
	e.mustDo(admin, "PUT", "/api/v1/notifications/mail", strings.Replace(body, "smtp-Pa55-secret", "new-Pa55", 1), 200)
	st3, _ := e.store.GetNotificationTarget(ctx, "mail")
	if _, err := e.store.GetSecret(ctx, st.Secret); !errors.Is(err, configdb.ErrNotFound) || st3.Secret == st.Secret {
		t.Fatalf("old secret kept: %v", err)
	}

	// The test route: 200 with the error of the delivery.
	e.tester.err = errors.New("smtp mail2.example.com:587: authentication as u: 535 5.7.8 invalid")
	res := decodeBody[apitypes.NotificationTest](t, e.mustDo(admin, "POST", "/api/v1/notifications/mail/test", "", 200))
	if res.Delivered || !strings.Contains(res.Error, "535") {
		t.Fatalf("test: %+v", res)
	}
	e.mustDo(admin, "POST", "/api/v1/notifications/nope/test", "", 404)

	// Jobs name existing targets only.
	job := `{"name":"j9","definition":{"vms":[{"name":"vm9","disks":["/images/vm9.img"]}],"repository":"repo1","notify":[{"target":"%s","on":["success"]}]}}`
	e.mustDo(admin, "POST", "/api/v1/jobs", strings.Replace(job, "%s", "mail", 1), 201)
	rec := e.do(admin, "POST", "/api/v1/jobs", strings.Replace(strings.Replace(job, "%s", "nope", 1), "j9", "j10", 1))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `no notification target \"nope\"`) {
		t.Errorf("job naming an unknown target: %d %s", rec.Code, rec.Body)
	}

	e.mustDo(admin, "DELETE", "/api/v1/notifications/mail", "", 204)
	if _, err := e.store.GetSecret(ctx, st3.Secret); !errors.Is(err, configdb.ErrNotFound) {
		t.Fatalf("secret kept after removal: %v", err)
	}
	out := decodeBody[apitypes.Notification](t, e.mustDo(viewer, "GET", "/api/v1/notification-outbox/1", "", 200))
	if out.Target != "n1" || out.State != "pending" || !strings.Contains(string(out.Message), `"version": 1`) {
		t.Fatalf("outbox entry %+v", out)
	}
	for _, leak := range []string{"smtp-Pa55-secret", "new-Pa55", fixturePassword} {
		if strings.Contains(e.bodies.String(), leak) || strings.Contains(e.logs.String(), leak) {
			t.Errorf("secret %q in a response or a log", leak)
		}
	}
}
