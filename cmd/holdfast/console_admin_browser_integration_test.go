package main

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/holdfast-backup/holdfast/internal/server/notify"
)

// TestConsoleAdminPagesInBrowser drives the Infrastructure, Users and
// Notifications pages in headless chromium against a real server with a
// repository agent: the administrator creates a proxy join token in the
// console and a real proxy joins with it (then listed online, the
// repository with its capacity); adds and deletes a source; creates a
// viewer and an API token (shown once; the token works) and revoked (it no longer does); enables TOTP
// (QR code, otpauth URI and secret shown once); adds a webhook target at a TLS receiver
// whose Test says delivered, and one without the receiver's CA whose Test
// shows the TLS error; an edit keeps the secret; a failed job's message is in the outbox with its
// delivery log. The viewer sees the lists without any action, and the
// API refuses the viewer's session anyway. No console errors, no CSP
// violations.
func TestConsoleAdminPagesInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process browser test")
	}
	chrome := chromiumPath(t)
	hooks := make(chan string, 10)
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// Each target's HMAC key is hook-key-NAME (typed in the console).
		if !notify.Verify([]byte("hook-key"+strings.ReplaceAll(r.URL.Path, "/", "-")), body, r.Header.Get(notify.SignatureHeader)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		hooks <- string(body)
	}))
	defer hook.Close()
	hookCA := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw}))

	c := newCluster(t, "")
	base := "https://" + c.listen
	dir := c.e.dir
	reach := filepath.Join(dir, "reach")
	if err := os.MkdirAll(reach, 0o755); err != nil {
		t.Fatal(err)
	}
	c.addRepository("repo1", 1, nil)
	files := map[string]string{"admin-pw": "alice-Console-pw-1", "job-pw": "correct horse"}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.e.ok("user", "add", "alice", "--role", "administrator", "--password-file", filepath.Join(dir, "admin-pw"))
	c.waitAgents("repo1")

	b := newBrowserSession(t, chrome)
	// noCSP checks the page about to be left (each page starts a new list).
	shot := func(name string) {
		t.Helper()
		browserEval[float64](b, "window.scrollTo(0, 0); window.scrollY")
		b.screenshot(name)
	}
	noCSP := func() {
		t.Helper()
		if v := browserEval[[]string](b, "window.__csp"); len(v) != 0 {
			t.Fatalf("CSP violations: %q", v)
		}
	}
	consoleLogin(b, base, "/console/infrastructure", "alice", files["admin-pw"], "body[data-ready] #join-form")

	// A join token, shown once; a real proxy joins with it.
	b.do("create a proxy join token", chromedp.SetValue(chromedp.CSS("#join-role"), "proxy"),
		chromedp.Click(chromedp.CSS("#join-form-submit")), chromedp.WaitVisible(chromedp.CSS("#join-token")))
	joinTok := browserEval[string](b, `document.getElementById("join-token").value`)
	if len(joinTok) < 20 {
		t.Fatalf("join token %q", joinTok)
	}
	c.procs["proxy1"] = c.proc("proxy", "--name", "proxy1", "--state-dir", filepath.Join(dir, "state-proxy1"),
		"--slots", "1", "--workers", "2", "--heartbeat", "500ms", "--join-token", joinTok, "--reach", reach+"/")
	c.waitAgents("proxy1")
	b.do("the proxy is online, the repository shows its capacity", chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready] [data-state="proxy1"]`)))
	if s := b.text(`[data-state="proxy1"]`); s != "online" {
		t.Fatalf("proxy1 is %q", s)
	}
	repoRow := b.text(`#agents tbody tr:has([data-state="repo1"])`)
	if !strings.Contains(repoRow, "capacity ") || !strings.Contains(repoRow, "free ") || !strings.Contains(repoRow, "not immutable") {
		t.Fatalf("repository row %q", repoRow)
	}

	// Sources: add (the API's error first, then right), delete.
	b.do("add a source with a bad name", chromedp.SendKeys(chromedp.CSS("#source-name"), "site a"),
		chromedp.SendKeys(chromedp.CSS("#source-address"), reach),
		chromedp.Click(chromedp.CSS("#source-form-submit")), chromedp.WaitVisible(chromedp.CSS("#source-form-error")))
	if msg := b.text("#source-form-error"); !strings.Contains(msg, "site a") {
		t.Fatalf("bad source name: %q", msg)
	}
	b.do("add a source", chromedp.SetValue(chromedp.CSS("#source-name"), "site-a"),
		chromedp.Click(chromedp.CSS("#source-form-submit")),
		chromedp.WaitVisible(chromedp.Search(`//div[@id="sources"]//td[text()="site-a"]`)))
	c.e.ok("source", "add", "old", "--type", "image", "--address", "/images/old")
	noCSP()
	b.do("delete a source", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`body[data-ready] button[aria-label="Delete source old"]`)),
		chromedp.Click(chromedp.CSS(`button[aria-label="Delete source old"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`button[aria-label="Delete source old"]`)))
	if out := c.e.ok("source", "list"); strings.Contains(out, "old") || !strings.Contains(out, "site-a") {
		t.Fatalf("source list after the console:\n%s", out)
	}

	// An API token, shown once, that works.
	b.do("create an API token", chromedp.SendKeys(chromedp.CSS("#token-name"), "ci"),
		chromedp.SetValue(chromedp.CSS("#token-role"), "viewer"),
		chromedp.Click(chromedp.CSS("#token-form-submit")), chromedp.WaitVisible(chromedp.CSS("#new-token")),
		chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Revoke token ci"]`)))
	apiTok := browserEval[string](b, `document.getElementById("new-token").value`)
	if code := browserEval[float64](b, `fetch("/api/v1/sources", {credentials: "omit", headers: {Authorization: "Bearer `+
		apiTok+`"}}).then((r) => r.status)`); code != 200 {
		t.Fatalf("the new token: HTTP %v", code)
	}
	shot("infrastructure.png")
	b.do("revoke the token", chromedp.Click(chromedp.CSS(`button[aria-label="Revoke token ci"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`button[aria-label="Revoke token ci"]`)))
	if code := browserEval[float64](b, `fetch("/api/v1/sources", {credentials: "omit", headers: {Authorization: "Bearer `+
		apiTok+`"}}).then((r) => r.status)`); code != 401 {
		t.Fatalf("the revoked token: HTTP %v", code)
	}
	noCSP()

	// Users: add a viewer, TOTP on (shown once) and off, a new password.
	b.do("open Users", chromedp.Click(chromedp.CSS(`a[data-nav="users"]`)),
		chromedp.WaitVisible(chromedp.CSS("body[data-ready] #user-form")),
		chromedp.SendKeys(chromedp.CSS("#user-name"), "victor"),
		chromedp.SetValue(chromedp.CSS("#user-role"), "viewer"),
		chromedp.SendKeys(chromedp.CSS("#user-password"), "short"),
		chromedp.Click(chromedp.CSS("#user-form-submit")), chromedp.WaitVisible(chromedp.CSS("#user-form-error")))
	if msg := b.text("#user-form-error"); !strings.Contains(msg, "at least 12") {
		t.Fatalf("short password: %q", msg)
	}
	b.do("add a viewer", chromedp.SetValue(chromedp.CSS("#user-password"), "victor-Console-pw-0"),
		chromedp.Click(chromedp.CSS("#user-form-submit")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-user="victor"] button[data-action="totp-on"]`)),
		chromedp.Click(chromedp.CSS(`tr[data-user="victor"] button[data-action="totp-on"]`)),
		chromedp.WaitVisible(chromedp.CSS("#totp-uri")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-user="victor"] button[data-action="totp-off"]`)))
	if uri := browserEval[string](b, `document.getElementById("totp-uri").value`); !strings.HasPrefix(uri, "otpauth://totp/Holdfast:victor?") {
		t.Fatalf("otpauth URI %q", uri)
	}
	if w := browserEval[float64](b, `(async () => { const i = document.getElementById("totp-qr"); await i.decode(); return i.naturalWidth; })()`); w < 100 {
		t.Fatalf("the QR code image is %v px wide", w)
	}
	if out := c.e.ok("user", "list"); !strings.Contains(out, "victor") {
		t.Fatalf("user list:\n%s", out)
	}
	shot("users.png")
	noCSP()
	b.do("TOTP off, new password", chromedp.Click(chromedp.CSS(`tr[data-user="victor"] button[data-action="totp-off"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-user="victor"] button[data-action="totp-on"]`)),
		chromedp.Click(chromedp.CSS(`tr[data-user="victor"] button[data-action="password"]`)),
		chromedp.WaitVisible(chromedp.CSS("#pw-victor")),
		chromedp.SendKeys(chromedp.CSS("#pw-victor"), "victor-Console-pw-1"),
		chromedp.Click(chromedp.CSS("#pwform-victor-submit")),
		chromedp.WaitNotPresent(chromedp.CSS("#pw-victor")))
	if who := b.text("#status"); who != "Password of victor set; its sessions ended." {
		t.Fatalf("status %q", who)
	}

	// Notifications: a webhook with the receiver's CA delivers; one
	// without it shows the TLS error.
	addHook := func(name, ca string) {
		steps := []chromedp.Action[chromedp.Void]{chromedp.Click(chromedp.CSS("#target-new")),
			chromedp.WaitVisible(chromedp.CSS("#target-form")),
			chromedp.SendKeys(chromedp.CSS("#nt-name"), name),
			chromedp.SendKeys(chromedp.CSS("#nt-url"), hook.URL+"/"+name),
			chromedp.SendKeys(chromedp.CSS("#nt-secret"), "hook-key-"+name)}
		if ca != "" { // pasted, as a user would
			steps = append(steps, chromedp.SetValue(chromedp.CSS("#nt-ca"), ca))
		}
		b.do("add webhook "+name, append(steps, chromedp.Click(chromedp.CSS("#target-form-submit")),
			chromedp.WaitVisible(chromedp.CSS(`button[aria-label="Test `+name+`"]`)))...)
	}
	b.do("open Notifications", chromedp.Click(chromedp.CSS(`a[data-nav="notifications"]`)),
		chromedp.WaitVisible(chromedp.CSS("body[data-ready] #target-new")))
	addHook("hook", hookCA)
	addHook("wrong", "")
	b.do("test hook", chromedp.Click(chromedp.CSS(`button[aria-label="Test hook"]`)),
		chromedp.WaitVisible(chromedp.Search(`//span[@data-test-result="hook"][text()="delivered"]`)))
	if body := <-hooks; !strings.Contains(body, "test message to notification target hook") {
		t.Fatalf("webhook got %q", body)
	}
	b.do("test wrong", chromedp.Click(chromedp.CSS(`button[aria-label="Test wrong"]`)),
		chromedp.WaitVisible(chromedp.CSS(`span[data-test-result="wrong"].state-failed`)))
	if msg := b.text(`span[data-test-result="wrong"]`); !strings.Contains(msg, "certificate") || strings.Contains(msg, "hook-key") {
		t.Fatalf("wrong target's test: %q", msg)
	}

	// A failed job notifies hook; its message is in the outbox, delivered,
	// with its delivery log.
	c.e.ok("job", "create", "lost", "--repository", "repo1", "--password-file", filepath.Join(dir, "job-pw"),
		"--vm", "lost="+filepath.Join(reach, "missing.img"), "--notify", "hook:failure")
	if res := c.runJobAny("lost"); res.Status != "failed" {
		t.Fatalf("job lost: %+v", res)
	}
	<-hooks // delivered
	delivered := browserEval[float64](b, `(async () => { for (;;) {
		const ns = await (await fetch("/api/v1/notification-outbox?target=hook")).json();
		const n = ns.find((n) => n.state === "delivered");
		if (n) { return n.id; }
		await new Promise((r) => setTimeout(r, 200)); } })()`)
	id := strconv.FormatFloat(delivered, 'f', 0, 64)
	noCSP()
	b.do("show the delivery log", chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready] button[aria-label="Delivery log of message `+id+`"]`)),
		chromedp.Click(chromedp.CSS(`button[aria-label="Delivery log of message `+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#log-lines li")))
	if log := b.text("#log-lines"); !strings.Contains(log, "delivered") {
		t.Fatalf("delivery log %q", log)
	}
	// An edit with an empty secret keeps the stored one.
	b.do("edit hook", chromedp.Click(chromedp.CSS(`button[aria-label="Edit hook"]`)),
		chromedp.WaitVisible(chromedp.CSS("#nt-summary")),
		chromedp.SendKeys(chromedp.CSS("#nt-summary"), "07:30"),
		chromedp.Click(chromedp.CSS("#target-form-submit")),
		chromedp.WaitVisible(chromedp.Search(`//div[@id="targets"]//td[text()="07:30"]`)))
	if out := c.e.ok("notification", "show", "hook"); !strings.Contains(out, "07:30") {
		t.Fatalf("notification show hook:\n%s", out)
	}
	b.do("test both again for the picture", chromedp.Click(chromedp.CSS(`button[aria-label="Test hook"]`)),
		chromedp.WaitVisible(chromedp.Search(`//span[@data-test-result="hook"][text()="delivered"]`)),
		chromedp.Click(chromedp.CSS(`button[aria-label="Test wrong"]`)),
		chromedp.WaitVisible(chromedp.CSS(`span[data-test-result="wrong"].state-failed`)))
	<-hooks
	shot("notifications.png")
	noCSP()

	// The viewer: the lists, no actions; the API refuses its session.
	b.do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	consoleLogin(b, base, "/console/infrastructure", "victor", "victor-Console-pw-1",
		`body[data-ready] [data-state="proxy1"]`)
	b.do("the viewer sees sources", chromedp.WaitVisible(chromedp.Search(`//div[@id="sources"]//td[text()="site-a"]`)))
	none := `document.querySelectorAll("#content button, #content form").length`
	if n := browserEval[float64](b, none); n != 0 {
		t.Fatalf("a viewer sees %v buttons or forms on Infrastructure", n)
	}
	noCSP()
	b.do("the viewer's notifications", chromedp.Click(chromedp.CSS(`a[data-nav="notifications"]`)),
		chromedp.WaitVisible(chromedp.Search(`//div[@id="targets"]//td[text()="wrong"]`)))
	if n := browserEval[float64](b, `document.querySelectorAll("#targets button, #target-new, #content form").length`); n != 0 {
		t.Fatalf("a viewer sees %v actions on Notifications", n)
	}
	noCSP()
	b.do("the viewer's users page", chromedp.Navigate(base+"/console/users"), chromedp.WaitVisible(chromedp.CSS("#users-admin-only")))
	for _, req := range []string{
		`fetch("/api/v1/sources", {method: "POST", headers: {"X-CSRF-Token": window.Holdfast.csrf, "Content-Type": "application/json"},
			body: JSON.stringify({name: "x", kind: "image", definition: {address: "/x"}})})`,
		`fetch("/api/v1/sources/site-a", {method: "DELETE", headers: {"X-CSRF-Token": window.Holdfast.csrf}})`,
		`fetch("/api/v1/agents/join-tokens", {method: "POST", headers: {"X-CSRF-Token": window.Holdfast.csrf, "Content-Type": "application/json"},
			body: JSON.stringify({role: "proxy"})})`,
		`fetch("/api/v1/users", {method: "POST", headers: {"X-CSRF-Token": window.Holdfast.csrf, "Content-Type": "application/json"},
			body: JSON.stringify({name: "eve", role: "administrator", password: "eve-Console-pw-1"})})`,
		`fetch("/api/v1/notifications/hook/test", {method: "POST", headers: {"X-CSRF-Token": window.Holdfast.csrf}})`,
	} {
		if code := browserEval[float64](b, req+`.then((r) => r.status)`); code != 403 {
			t.Fatalf("viewer %s: HTTP %v", req, code)
		}
	}
	if p := b.problems(); len(p) != 0 {
		t.Fatalf("console errors: %q", p)
	}
	noCSP()
}
