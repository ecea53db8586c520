package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// TestChangeOwnPassword: a signed-in user (a viewer) changes their own
// password with the current one; their other sessions end, this one goes
// on; wrong current passwords are refused, audited and lock the user like
// failed logins; a short new password is refused; an API token may not.
func TestChangeOwnPassword(t *testing.T) {
	e := newEnv(t)
	addUser(t, e, "vi", configdb.RoleViewer, "vi-password-123")
	b := &browser{e: e, contentType: "application/json"}
	other := &browser{e: e, contentType: "application/json"}
	for _, x := range []*browser{b, other} {
		if rec := x.login("vi", "vi-password-123", ""); rec.Code != http.StatusOK {
			t.Fatalf("login: %d %s", rec.Code, rec.Body)
		}
	}
	change := func(x *browser, cur, next, csrf string) (int, string) {
		rec := x.send("PUT", "/api/v1/me/password", `{"current":"`+cur+`","new":"`+next+`"}`, csrf)
		return rec.Code, rec.Body.String()
	}
	if code, _ := change(b, "vi-password-123", "vi-new-password-1", ""); code != http.StatusForbidden {
		t.Fatalf("without the CSRF token: %d", code)
	}
	if code, body := change(b, "vi-password-123", "short", b.csrf); code != http.StatusBadRequest || !strings.Contains(body, "at least 12") {
		t.Fatalf("short new password: %d %s", code, body)
	}
	if code, body := change(b, "wrong-password-1", "vi-new-password-1", b.csrf); code != http.StatusForbidden ||
		!strings.Contains(body, "wrong_password") {
		t.Fatalf("wrong current password: %d %s", code, body)
	}
	if code, body := change(b, "vi-password-123", "vi-new-password-1", b.csrf); code != http.StatusNoContent {
		t.Fatalf("change: %d %s", code, body)
	}
	if rec := b.send("GET", "/api/v1/me", "", ""); rec.Code != http.StatusOK {
		t.Fatalf("the changing session ended: %d", rec.Code)
	}
	checkError(t, other.send("GET", "/api/v1/me", "", ""), http.StatusUnauthorized, "unauthorized")
	checkError(t, other.login("vi", "vi-password-123", ""), http.StatusUnauthorized, "unauthorized")
	if rec := other.login("vi", "vi-new-password-1", ""); rec.Code != http.StatusOK {
		t.Fatalf("login with the new password: %d %s", rec.Code, rec.Body)
	}
	// An API token has no password of its own.
	checkError(t, e.do(e.tokens[configdb.RoleAdministrator], "PUT", "/api/v1/me/password",
		`{"current":"x","new":"another-long-password"}`), http.StatusForbidden, "forbidden")

	// Wrong current passwords count as failed logins: five lock the user.
	for range 5 {
		if code, _ := change(b, "guess-guess-guess", "vi-other-password-1", b.csrf); code != http.StatusForbidden {
			t.Fatalf("wrong current password: %d", code)
		}
	}
	checkError(t, other.login("vi", "vi-new-password-1", ""), http.StatusTooManyRequests, "locked")
	rec := b.send("PUT", "/api/v1/me/password", `{"current":"vi-new-password-1","new":"vi-other-password-1"}`, b.csrf)
	checkError(t, rec, http.StatusTooManyRequests, "locked")
	e.clk.Advance(15 * time.Minute)
	if code, body := change(b, "vi-new-password-1", "vi-other-password-1", b.csrf); code != http.StatusNoContent {
		t.Fatalf("change after the lock: %d %s", code, body)
	}

	entries, err := e.store.ListAudit(context.Background(), configdb.AuditFilter{Actor: "user:vi", Target: "vi"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range entries {
		got = append(got, a.Action+" "+string(a.Details))
	}
	want := []string{"user.password.change ", `user.password.failure {"reason":"wrong current password; locked"}`}
	if len(got) != 8 || got[0] != want[0] || got[1] != want[1] || got[7] != `user.password.failure {"reason":"wrong current password"}` {
		t.Fatalf("audit %q", got)
	}
	if strings.Contains(e.bodies.String(), "vi-new-password-1") || strings.Contains(e.logs.String(), "vi-new-password-1") {
		t.Fatal("a password reached a response or the log")
	}
}

// TestChangeOwnPasswordThrottledPerAddress: wrong current passwords count
// towards the per-address failure limit, as failed logins do.
func TestChangeOwnPasswordThrottledPerAddress(t *testing.T) {
	e := newEnv(t)
	addUser(t, e, "vi", configdb.RoleViewer, "vi-password-123")
	b := &browser{e: e, contentType: "application/json"}
	if rec := b.login("vi", "vi-password-123", ""); rec.Code != http.StatusOK {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	e.srv.fails = newFailLimiter(AuthFailureLimit{Burst: 2, Refill: time.Hour}, e.clk.Now)
	for range 2 {
		rec := b.send("PUT", "/api/v1/me/password", `{"current":"wrong-wrong-wrong","new":"vi-new-password-1"}`, b.csrf)
		checkError(t, rec, http.StatusForbidden, "wrong_password")
	}
	rec := b.send("PUT", "/api/v1/me/password", `{"current":"vi-password-123","new":"vi-new-password-1"}`, b.csrf)
	checkError(t, rec, http.StatusTooManyRequests, "too_many_failures")
}
