package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/holdfast-backup/holdfast/internal/passhash"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// testHashParams keep argon2id cheap in tests.
var testHashParams = passhash.Params{MemoryKiB: 64, Time: 1, Threads: 1}

func testHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := passhash.New(pw, testHashParams)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// browser is a cookie jar for one client of e.
type browser struct {
	e           *env
	cookie      *http.Cookie
	csrf        string
	origin      string
	contentType string
}

// send sends a request with the session cookie (if any) and header
// X-CSRF-Token: csrf (if set), keeping a cookie the answer sets.
func (b *browser) send(method, path, body, csrf string) *httptest.ResponseRecorder {
	b.e.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = "console.example:8443"
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	if csrf != "" {
		req.Header.Set(CSRFHeader, csrf)
	}
	if body != "" {
		req.Header.Set("Content-Type", b.contentType)
	}
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	rec := httptest.NewRecorder()
	b.e.srv.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.Name == SessionCookie {
			b.cookie = c
			if c.MaxAge < 0 {
				b.cookie = nil
			}
		}
	}
	return rec
}

func (b *browser) login(user, pw, code string) *httptest.ResponseRecorder {
	b.e.t.Helper()
	body := `{"user":"` + user + `","password":"` + pw + `","totp":"` + code + `"}`
	rec := b.send("POST", "/api/v1/login", body, "")
	if rec.Code == http.StatusOK {
		b.csrf = decodeBody[apitypes.Me](b.e.t, rec).CSRFToken
	}
	return rec
}

func addUser(t *testing.T, e *env, name string, role configdb.Role, pw string) {
	t.Helper()
	body := `{"name":"` + name + `","role":"` + string(role) + `","password":"` + pw + `"}`
	e.mustDo(e.tokens[configdb.RoleAdministrator], "POST", "/api/v1/users", body, http.StatusCreated)
}

func TestLoginSession(t *testing.T) {
	e := newEnv(t)
	addUser(t, e, "bo", configdb.RoleBackupOperator, "bo-password-123")
	b := &browser{e: e, contentType: "application/json"}

	rec := b.login("bo", "wrong-password-1", "")
	checkMessage(t, rec, http.StatusUnauthorized, "unauthorized", "wrong user name, password or one-time code")
	if b.cookie != nil || rec.Header().Get("Set-Cookie") != "" {
		t.Fatal("a failed login set a cookie")
	}
	checkMessage(t, b.login("nobody", "wrong-password-1", ""), http.StatusUnauthorized, "unauthorized",
		"wrong user name, password or one-time code")

	// A login another site could send: a form's content type, a foreign Origin.
	b.contentType = "text/plain"
	checkError(t, b.login("bo", "bo-password-123", ""), http.StatusBadRequest, "invalid_request")
	b.contentType, b.origin = "application/json", "https://evil.example"
	checkError(t, b.login("bo", "bo-password-123", ""), http.StatusForbidden, "csrf_failed")
	if b.cookie != nil {
		t.Fatal("a refused login set a cookie")
	}
	b.origin = ""

	rec = b.login("bo", "bo-password-123", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("login answer Cache-Control %q", rec.Header().Get("Cache-Control"))
	}
	me := decodeBody[apitypes.Me](t, rec)
	if me.Name != "bo" || me.Role != "backup_operator" || me.Kind != "session" || len(me.CSRFToken) < 40 || me.Expires == nil {
		t.Fatalf("login answer %+v", me)
	}
	c := b.cookie
	if c == nil || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" ||
		!strings.HasPrefix(c.Value, "hfs_") || strings.Contains(rec.Body.String(), c.Value) {
		t.Fatalf("session cookie %+v", c)
	}

	// The cookie authenticates reads; /me repeats the CSRF token.
	b.e.mustDo("", "GET", "/api/v1/health", "", 200)
	if rec := b.send("GET", "/api/v1/jobs", "", ""); rec.Code != http.StatusOK {
		t.Fatalf("GET jobs with the cookie: %d %s", rec.Code, rec.Body)
	}
	if got := decodeBody[apitypes.Me](t, b.send("GET", "/api/v1/me", "", "")); got.Name != "bo" || got.CSRFToken != b.csrf {
		t.Fatalf("me %+v", got)
	}
	// Unsafe methods need the CSRF token, and an Origin (if sent) of this server.
	checkError(t, b.send("POST", "/api/v1/jobs/j1/disable", "", ""), http.StatusForbidden, "csrf_failed")
	checkError(t, b.send("POST", "/api/v1/jobs/j1/disable", "", b.csrf+"x"), http.StatusForbidden, "csrf_failed")
	b.origin = "https://evil.example"
	checkError(t, b.send("POST", "/api/v1/jobs/j1/disable", "", b.csrf), http.StatusForbidden, "csrf_failed")
	b.origin = "https://console.example:8443"
	if rec := b.send("POST", "/api/v1/jobs/j1/disable", "", b.csrf); rec.Code != http.StatusOK {
		t.Fatalf("disable with CSRF token: %d %s", rec.Code, rec.Body)
	}
	// The role applies as for tokens.
	checkError(t, b.send("GET", "/api/v1/users", "", ""), http.StatusForbidden, "forbidden")
	checkError(t, b.send("POST", "/api/v1/restores", `{"point":"p1","disk":0,"target":"/tmp/x"}`, b.csrf), http.StatusForbidden, "forbidden")
	// A bearer token wins over the cookie and needs no CSRF token.
	rec = e.do(e.tokens[configdb.RoleViewer], "GET", "/api/v1/me", "")
	if got := decodeBody[apitypes.Me](t, rec); got.Kind != "token" || got.Name != "tok-viewer" || got.CSRFToken != "" {
		t.Fatalf("me with a token: %+v", got)
	}

	// Logout needs the CSRF token too, ends the session and clears the cookie.
	old := b.cookie
	checkError(t, b.send("POST", "/api/v1/logout", "", ""), http.StatusForbidden, "csrf_failed")
	if rec := b.send("POST", "/api/v1/logout", "", b.csrf); rec.Code != http.StatusNoContent || b.cookie != nil {
		t.Fatalf("logout: %d, cookie %v", rec.Code, b.cookie)
	}
	b.cookie = old
	checkMessage(t, b.send("GET", "/api/v1/jobs", "", ""), http.StatusUnauthorized, "unauthorized", "invalid or expired login session")

	// The audit log has the logins and the logout, without passwords.
	entries, err := e.store.ListAudit(context.Background(), configdb.AuditFilter{Actor: "user:bo"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range entries {
		got = append(got, a.Action+" "+string(a.Details))
	}
	want := `logout |job.disable |login.success |login.failure {"reason":"wrong password or code"}`
	if strings.Join(got, "|") != want {
		t.Fatalf("audit %q, want %q", strings.Join(got, "|"), want)
	}
	if n, _ := e.store.ListAudit(context.Background(), configdb.AuditFilter{Actor: "user:nobody", Action: "login.failure"}); len(n) != 1 {
		t.Fatalf("unknown user's failure not audited: %+v", n)
	}
	checkError(t, b.login(strings.Repeat("x", 5000)+"/evil", "wrong-password-1", ""), http.StatusUnauthorized, "unauthorized")
	if n, _ := e.store.ListAudit(context.Background(), configdb.AuditFilter{Actor: "user:(invalid name)"}); len(n) != 1 {
		t.Fatalf("invalid user name's failure: %+v", n)
	}
	if strings.Contains(e.bodies.String(), "bo-password-123") || strings.Contains(e.logs.String(), "bo-password-123") {
		t.Fatal("a password reached a response or the log")
	}
}

func TestLoginSessionExpires(t *testing.T) {
	e := newEnv(t)
	addUser(t, e, "vi", configdb.RoleViewer, "vi-password-123")
	b := &browser{e: e, contentType: "application/json"}
	if rec := b.login("vi", "vi-password-123", ""); rec.Code != http.StatusOK {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	e.clk.Advance(29 * time.Minute)
	if rec := b.send("GET", "/api/v1/me", "", ""); rec.Code != http.StatusOK {
		t.Fatalf("session after 29 min: %d", rec.Code)
	}
	e.clk.Advance(31 * time.Minute)
	checkError(t, b.send("GET", "/api/v1/me", "", ""), http.StatusUnauthorized, "unauthorized")
}

func TestLoginLockout(t *testing.T) {
	e := newEnv(t)
	addUser(t, e, "al", configdb.RoleAdministrator, "al-password-123")
	b := &browser{e: e, contentType: "application/json"}
	for range 5 {
		checkError(t, b.login("al", "guess-guess-guess", ""), http.StatusUnauthorized, "unauthorized")
	}
	rec := b.login("al", "al-password-123", "")
	checkError(t, rec, http.StatusTooManyRequests, "locked")
	if rec.Header().Get("Retry-After") != "900" || b.cookie != nil {
		t.Fatalf("locked: Retry-After %q, cookie %v", rec.Header().Get("Retry-After"), b.cookie)
	}
	listed := decodeBody[apitypes.User](t, e.mustDo(e.tokens[configdb.RoleAdministrator], "GET", "/api/v1/users/al", "", 200))
	if listed.LockedUntil == nil {
		t.Fatalf("user shows no lock: %+v", listed)
	}
	e.clk.Advance(15 * time.Minute)
	if rec := b.login("al", "al-password-123", ""); rec.Code != http.StatusOK {
		t.Fatalf("login after the lock: %d %s", rec.Code, rec.Body)
	}
	// An administrator's new password lifts a lock at once.
	for range 5 {
		b.login("al", "guess-guess-guess", "")
	}
	checkError(t, b.login("al", "al-password-123", ""), http.StatusTooManyRequests, "locked")
	e.mustDo(e.tokens[configdb.RoleAdministrator], "PUT", "/api/v1/users/al/password", `{"password":"al-new-password-1"}`, 204)
	if rec := b.login("al", "al-new-password-1", ""); rec.Code != http.StatusOK {
		t.Fatalf("login after a new password: %d %s", rec.Code, rec.Body)
	}
}

func TestLoginTOTP(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[configdb.RoleAdministrator]
	addUser(t, e, "ro", configdb.RoleRestoreOperator, "ro-password-123")
	key := decodeBody[apitypes.TOTPKey](t, e.mustDo(admin, "POST", "/api/v1/users/ro/totp", "", 201))
	if len(key.Secret) < 32 || !strings.HasPrefix(key.URL, "otpauth://totp/Holdfast:ro?") {
		t.Fatalf("TOTP key %+v", key)
	}
	code := func(at time.Time) string {
		c, err := totp.GenerateCodeCustom(key.Secret, at, totpOpts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	b := &browser{e: e, contentType: "application/json"}
	for _, bad := range []string{"", "12345", code(e.clk.Now().Add(-5 * time.Minute))} {
		checkError(t, b.login("ro", "ro-password-123", bad), http.StatusUnauthorized, "unauthorized")
	}
	checkError(t, b.login("ro", "wrong-password-1", code(e.clk.Now())), http.StatusUnauthorized, "unauthorized")
	if rec := b.login("ro", "ro-password-123", code(e.clk.Now())); rec.Code != http.StatusOK {
		t.Fatalf("login with code: %d %s", rec.Code, rec.Body)
	}
	// A code is good once (RFC 6238 5.2), and so are the older ones; the
	// next step's code works, within one step of skew.
	checkError(t, b.login("ro", "ro-password-123", code(e.clk.Now())), http.StatusUnauthorized, "unauthorized")
	checkError(t, b.login("ro", "ro-password-123", code(e.clk.Now().Add(-30*time.Second))), http.StatusUnauthorized, "unauthorized")
	if rec := b.login("ro", "ro-password-123", code(e.clk.Now().Add(30*time.Second))); rec.Code != http.StatusOK {
		t.Fatalf("login with the next step's code: %d %s", rec.Code, rec.Body)
	}
	if u := decodeBody[apitypes.User](t, e.mustDo(admin, "GET", "/api/v1/users/ro", "", 200)); !u.TOTP {
		t.Fatalf("user %+v", u)
	}
	e.mustDo(admin, "DELETE", "/api/v1/users/ro/totp", "", 204)
	if rec := b.login("ro", "ro-password-123", ""); rec.Code != http.StatusOK {
		t.Fatalf("login without TOTP: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(e.logs.String(), key.Secret) {
		t.Fatal("TOTP secret logged")
	}
}

func TestUsersAPI(t *testing.T) {
	e := newEnv(t)
	admin := e.tokens[configdb.RoleAdministrator]
	for _, bad := range []string{
		`{"name":"x y","role":"viewer","password":"long-enough-pw"}`,
		`{"name":"x","role":"root","password":"long-enough-pw"}`,
		`{"name":"x","role":"viewer","password":"short"}`,
		`{"name":"x","role":"viewer","password":"` + strings.Repeat("p", passhash.MaxPassword+1) + `"}`,
	} {
		checkError(t, e.do(admin, "POST", "/api/v1/users", bad), http.StatusBadRequest, "invalid_request")
	}
	addUser(t, e, "x", configdb.RoleViewer, "long-enough-pw")
	checkMessage(t, e.do(admin, "POST", "/api/v1/users", `{"name":"x","role":"viewer","password":"long-enough-pw"}`),
		http.StatusConflict, "conflict", "a user named x already exists")
	users := decodeBody[[]apitypes.User](t, e.mustDo(admin, "GET", "/api/v1/users", "", 200))
	if len(users) != 2 || users[0].Name != "u1" || users[1].Name != "x" || users[1].Role != "viewer" {
		t.Fatalf("users %+v", users)
	}
	if strings.Contains(e.bodies.String(), "argon2id") || strings.Contains(e.bodies.String(), "long-enough-pw") {
		t.Fatal("a password or its hash reached a response")
	}
	checkError(t, e.do(admin, "PUT", "/api/v1/users/x/password", `{"password":"short"}`), http.StatusBadRequest, "invalid_request")
	checkError(t, e.do(admin, "PUT", "/api/v1/users/zz/password", `{"password":"long-enough-pw"}`), http.StatusNotFound, "not_found")
	checkError(t, e.do(admin, "POST", "/api/v1/users/zz/totp", ""), http.StatusNotFound, "not_found")
	e.mustDo(admin, "DELETE", "/api/v1/users/x", "", 204)
	checkError(t, e.do(admin, "GET", "/api/v1/users/x", ""), http.StatusNotFound, "not_found")
}

// TestLoginFailuresThrottledPerAddress checks that wrong passwords count
// towards the per-address limit like bad tokens.
func TestLoginFailuresThrottledPerAddress(t *testing.T) {
	e := newEnv(t)
	e.srv.fails = newFailLimiter(AuthFailureLimit{Burst: 2, Refill: time.Hour}, e.clk.Now)
	b := &browser{e: e, contentType: "application/json"}
	for range 2 {
		checkError(t, b.login("u1", "wrong-wrong-wrong", ""), http.StatusUnauthorized, "unauthorized")
	}
	checkError(t, b.login("u1", "u1-password-long", ""), http.StatusTooManyRequests, "too_many_failures")
}
