package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/holdfast-backup/holdfast/internal/server/console"
)

// chromiumPath finds Debian's chromium, or skips (fails with
// HOLDFAST_REQUIRE_BROWSER set).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("HOLDFAST_REQUIRE_BROWSER") != "" {
		t.Fatal("HOLDFAST_REQUIRE_BROWSER is set but chromium is not installed (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium); set HOLDFAST_REQUIRE_BROWSER=1 to fail instead")
	return ""
}

// browserSession is a headless chromium tab with its console collected.
type browserSession struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	log []chromedp.ConsoleMessage
}

// cspProbe records Content-Security-Policy violations in every page (a
// DevTools script, which the page's CSP does not govern).
const cspProbe = `window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI));`

func newBrowserSession(t *testing.T, chrome string) *browserSession {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 760),
		// The server's certificate is signed by its own CA (DATA-DIR/ca.pem),
		// which this throwaway profile does not trust.
		chromedp.Flag("ignore-certificate-errors", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	b := &browserSession{t: t, ctx: ctx}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
		page.AddScriptToEvaluateOnNewDocumentParams{Source: cspProbe}); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.log = append(b.log, m)
			b.mu.Unlock()
		}
	}()
	return b
}

// do runs steps, each wait bounded by a generous deadline (events, not
// sleeps: WaitVisible polls the page's DOM).
func (b *browserSession) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\nconsole: %v", what, err, b.messages())
	}
}

func browserEval[T any](b *browserSession, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (b *browserSession) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browserSession) sessionCookie(base string) *network.Cookie {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
	if err != nil {
		b.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if strings.Contains(c.Name, "holdfast_session") {
			return c
		}
	}
	return nil
}

func (b *browserSession) messages() []chromedp.ConsoleMessage {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), b.log...)
}

// problems are the console's exceptions and errors, except the browser's
// own notes of HTTP error answers (source "network": the 401s and 403s
// the test provokes on purpose).
func (b *browserSession) problems() []string {
	var out []string
	for _, m := range b.messages() {
		if m.IsException() || (m.Type == chromedp.ConsoleError && m.Source != "network") {
			out = append(out, m.String())
		}
	}
	return out
}

func (b *browserSession) screenshot(name string) {
	b.t.Helper()
	b.saveScreenshot(name, chromedp.CaptureScreenshot())
}

// saveScreenshot saves what shot captured (the window, or the whole page
// with chromedp.FullScreenshot).
func (b *browserSession) saveScreenshot(name string, shot chromedp.Action[[]byte]) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, shot)
	if err != nil {
		b.t.Fatal(err)
	}
	dir := os.Getenv("HOLDFAST_CONSOLE_SCREENSHOTS") // e.g. docs/console, to refresh the documentation
	if dir == "" {
		dir = b.t.TempDir()
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// consoleHeaders GETs path from the server (trusting its CA) and returns
// the answer's headers.
func consoleHeaders(t *testing.T, c *cluster, path string) http.Header {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(c.data, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Get("https://" + c.listen + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: HTTP %d", path, resp.StatusCode)
	}
	return resp.Header
}

// TestConsoleInBrowser drives headless chromium against a real holdfast
// server: a wrong password shows an error and sets no cookie, the right one
// reaches the dashboard with the user, role and jobs; logout ends the
// session; a viewer sees no Users entry and the API refuses it anyway;
// pages carry the CSP and the console shows no errors.
func TestConsoleInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	c := newCluster(t, "")
	base := "https://" + c.listen
	files := map[string]string{"admin-pw": "alice-Console-pw-1", "viewer-pw": "victor-Console-pw-1", "job-pw": "job-Secret-pw-1"}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(c.e.dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.e.ok("user", "add", "alice", "--role", "administrator", "--password-file", filepath.Join(c.e.dir, "admin-pw"))
	c.e.ok("user", "add", "victor", "--role", "viewer", "--password-file", filepath.Join(c.e.dir, "viewer-pw"))
	c.e.ok("job", "create", "nightly", "--vm", "vm1=/images/vm1.img", "--repository", "repo1",
		"--password-file", filepath.Join(c.e.dir, "job-pw"), "--schedule", "0 2 * * *")

	for _, p := range []string{"/console/login", "/console/"} {
		h := consoleHeaders(t, c, p)
		if h.Get("Content-Security-Policy") != console.CSP || h.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("%s: headers %v", p, h)
		}
	}

	b := newBrowserSession(t, chrome)
	// Not logged in: the dashboard sends the browser to the login page.
	b.do("open the console", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	b.screenshot("login.png")
	b.do("log in with a wrong password",
		chromedp.SendKeys(chromedp.CSS("#user"), "alice"),
		chromedp.SendKeys(chromedp.CSS("#password"), "not-the-password"),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if msg := b.text("#login-error"); msg != "Wrong user name, password or one-time code." {
		t.Fatalf("login error %q", msg)
	}
	if ck := b.sessionCookie(base); ck != nil {
		t.Fatalf("a failed login set cookie %+v", ck)
	}

	b.do("log in", chromedp.SendKeys(chromedp.CSS("#password"), files["admin-pw"]),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#signed-in")),
		chromedp.WaitVisible(chromedp.Search(`//td[text()="nightly"]`)))
	if who := b.text("#signed-in"); who != "Signed in as alice, role Administrator." {
		t.Fatalf("dashboard says %q", who)
	}
	if who := b.text("#who"); who != "alice · Administrator" {
		t.Fatalf("header says %q", who)
	}
	b.do("the administrator sees Users", chromedp.WaitVisible(chromedp.CSS(`a[data-nav="users"]`)))
	b.screenshot("dashboard.png")
	ck := b.sessionCookie(base)
	if ck == nil || !ck.HTTPOnly || !ck.Secure || ck.SameSite != network.CookieSameSiteStrict || ck.Path != "/" {
		t.Fatalf("session cookie %+v", ck)
	}
	if jsCookies := browserEval[string](b, "document.cookie"); strings.Contains(jsCookies, "holdfast_session") {
		t.Fatalf("scripts can read the session cookie: %q", jsCookies)
	}
	// An unsafe request without the CSRF token is refused; with it, done.
	if code := browserEval[float64](b, `fetch("/api/v1/jobs/nightly/disable", {method: "POST"}).then((r) => r.status)`); code != 403 {
		t.Fatalf("POST without CSRF token: HTTP %v", code)
	}
	if code := browserEval[float64](b, `fetch("/api/v1/jobs/nightly/disable", {method: "POST",
		headers: {"X-CSRF-Token": window.Holdfast.csrf}}).then((r) => r.status)`); code != 200 {
		t.Fatalf("POST with CSRF token: HTTP %v", code)
	}
	b.do("open the jobs page", chromedp.Click(chromedp.CSS(`a[data-nav="jobs"]`)),
		chromedp.WaitVisible(chromedp.Search(`//td[text()="nightly"]/following-sibling::td[text()="no"]`)))

	b.do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	if ck := b.sessionCookie(base); ck != nil {
		t.Fatalf("logout left cookie %+v", ck)
	}
	b.do("the dashboard needs a login again", chromedp.Navigate(base+"/console/"),
		chromedp.WaitVisible(chromedp.CSS("#login-form")))

	b.do("log in as a viewer",
		chromedp.SendKeys(chromedp.CSS("#user"), "victor"),
		chromedp.SendKeys(chromedp.CSS("#password"), files["viewer-pw"]),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.Search(`//td[text()="nightly"]`)))
	if who := b.text("#signed-in"); who != "Signed in as victor, role Viewer." {
		t.Fatalf("viewer dashboard says %q", who)
	}
	if shown := browserEval[bool](b, `document.querySelector('a[data-nav="users"]').offsetParent !== null`); shown {
		t.Fatal("a viewer sees the Users entry")
	}
	if code := browserEval[float64](b, `fetch("/api/v1/users").then((r) => r.status)`); code != 403 {
		t.Fatalf("viewer GET /api/v1/users: HTTP %v", code)
	}
	consoleChangePassword(b, base, "victor", files["viewer-pw"], "victor-New-pw-2")

	if p := b.problems(); len(p) != 0 {
		t.Fatalf("console errors: %q", p)
	}
	if v := browserEval[[]string](b, "window.__csp"); len(v) != 0 {
		t.Fatalf("CSP violations: %q", v)
	}
	// The policy is enforced: an injected inline script does not run.
	ran := browserEval[bool](b, `(() => { const s = document.createElement("script"); s.textContent = "window.__ran = true";
		document.body.append(s); return window.__ran === true; })()`)
	if ran || len(browserEval[[]string](b, "window.__csp")) != 1 {
		t.Fatalf("inline script ran: %v, violations %q", ran, browserEval[[]string](b, "window.__csp"))
	}
	t.Logf("console: %v", b.messages())
}

// consoleChangePassword changes the signed-in user's password with the
// header's form (a wrong current password first, refused), logs out, and
// checks that the old password fails and the new one logs in.
func consoleChangePassword(b *browserSession, base, user, oldPW, newPW string) {
	b.t.Helper()
	b.do("open the password form", chromedp.Click(chromedp.CSS("#change-password")),
		chromedp.WaitVisible(chromedp.CSS("#password-form")),
		chromedp.SendKeys(chromedp.CSS("#pw-current"), "not-my-password"),
		chromedp.SendKeys(chromedp.CSS("#pw-new"), newPW),
		chromedp.SendKeys(chromedp.CSS("#pw-again"), newPW),
		chromedp.Click(chromedp.CSS("#password-form-submit")),
		chromedp.WaitVisible(chromedp.CSS("#password-form-error")))
	if msg := b.text("#password-form-error"); msg != "the current password is wrong" {
		b.t.Fatalf("wrong current password shown as %q", msg)
	}
	clearInput(b, "pw-current")
	b.do("change the password", chromedp.SendKeys(chromedp.CSS("#pw-current"), oldPW),
		chromedp.Click(chromedp.CSS("#password-form-submit")),
		chromedp.WaitVisible(chromedp.Search(`//p[@id="pw-done"][starts-with(., "Password changed")]`)))
	b.do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
	b.do("the old password fails", chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), oldPW),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#login-error")))
	if ck := b.sessionCookie(base); ck != nil {
		b.t.Fatalf("the old password logged in: cookie %+v", ck)
	}
	clearInput(b, "password")
	b.do("the new password logs in", chromedp.SendKeys(chromedp.CSS("#password"), newPW),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS("#signed-in")))
	if who := b.text("#who"); !strings.HasPrefix(who, user+" · ") {
		b.t.Fatalf("header after the new login says %q", who)
	}
}

// clearInput empties the input with id (chromedp.SetValue refuses "").
func clearInput(b *browserSession, id string) {
	b.t.Helper()
	if v := browserEval[string](b, `(document.getElementById("`+id+`").value = "", document.getElementById("`+id+`").value)`); v != "" {
		b.t.Fatalf("#%s keeps %q", id, v)
	}
}
