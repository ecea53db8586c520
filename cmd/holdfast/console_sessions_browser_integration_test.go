package main

import (
	"crypto/sha256"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// consoleLogout logs out with the header's button.
func consoleLogout(b *browserSession) {
	b.t.Helper()
	b.do("log out", chromedp.Click(chromedp.CSS("#logout")), chromedp.WaitVisible(chromedp.CSS("#login-form")))
}

func fileSHA256(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestConsoleSessionsAndPointsInBrowser drives headless chromium against a
// real server with a repository agent and a proxy: a session opened while
// it waits for a proxy updates live, through a disk part-way, to its
// per-disk results; a failed
// job's session shows its reason (found through the list's result filter)
// and "retry failed VMs" runs them again once the cause is gone;
// a disk restored from the Restore points page equals its source; a
// restore operator sees the restore action, a viewer does not and the API
// refuses the viewer's request anyway.
func TestConsoleSessionsAndPointsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	chrome := chromiumPath(t)
	c := newCluster(t, "")
	base := "https://" + c.listen
	dir := c.e.dir
	writeVMDisks(t, dir, 1)
	root := filepath.Join(dir, "restores")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	pw := map[string]string{"alice": "alice-Console-pw-1", "rita": "rita-Console-pw-1", "victor": "victor-Console-pw-1",
		"job": "correct horse"} // the repository's (newEnv's HOLDFAST_PASSWORD)
	for name, v := range pw {
		if err := os.WriteFile(filepath.Join(dir, name+"-pw"), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for user, role := range map[string]string{"alice": "administrator", "rita": "restore_operator", "victor": "viewer"} {
		c.e.ok("user", "add", user, "--role", role, "--password-file", filepath.Join(dir, user+"-pw"))
	}
	c.addRepository("repo1", 2, nil)
	c.waitAgents("repo1")
	jobPW := filepath.Join(dir, "job-pw")
	// Paced reads, so the page sees the disks part-way.
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-file", jobPW, "--vm", vmSpec(dir, "vm1", 2),
		"--read-limit", "512KiB/s") // 4 s or more per disk: the 2 s polls see it part-way
	missing := filepath.Join(dir, "no-such-disk.img")
	c.e.ok("job", "create", "broken", "--repository", "repo1", "--password-file", jobPW, "--vm", "vm2="+missing)

	b := newBrowserSession(t, chrome)
	consoleLogin(b, base, "/console/", "alice", pw["alice"], "#signed-in")

	// No proxy yet: the session waits, and its page says why.
	id := c.startJob("nightly")
	sessionURL := base + "/console/sessions?id=" + strconv.FormatInt(id, 10)
	b.do("open the waiting session", chromedp.Navigate(sessionURL),
		chromedp.WaitVisible(chromedp.Search(`//dt[text()="Waiting"]/following-sibling::dd[1][contains(., "no proxy")]`)))
	if done := browserEval[string](b, "document.body.dataset.sessionDone || ''"); done != "" {
		t.Fatalf("a waiting session's page stopped polling (%q)", done)
	}
	// A proxy joins; the same page, polling, shows the run to its end.
	c.addProxy("proxy1", 2, "--restore-root", root)
	b.do("watch a disk part-way", chromedp.Poll[chromedp.Void](`[...document.querySelectorAll(
		"section[aria-label=Disks] progress")].some((p) => p.value > 0 && p.value < p.max)`, chromedp.WithPollingTimeout(0)))
	b.do("watch the session finish", chromedp.WaitVisible(chromedp.CSS(`body[data-session-done="success"]`)))
	disks := browserEval[[]string](b, `[...document.querySelectorAll("section[aria-label=Disks] tbody tr")].map((r) =>
		[...r.cells].map((c) => c.textContent).join("|"))`)
	if len(disks) != 2 {
		t.Fatalf("disk rows %q", disks)
	}
	for i, size := range []string{"16.0 MiB", "2.0 MiB"} {
		cells := strings.Split(disks[i], "|")
		// VM, Disk, State, Progress, Rate, Transport, Proxy, Bottleneck, Attempt, Error
		if len(cells) != 10 || cells[0] != "vm1" || cells[1] != strconv.Itoa(i) || cells[2] != "success" ||
			!strings.Contains(cells[3], size+" of "+size+" (100%)") || !strings.HasSuffix(cells[4], "/s") ||
			cells[5] != "direct" || cells[6] != "proxy1" || cells[7] == "–" || cells[9] != "–" {
			t.Fatalf("disk %d row %q", i, cells)
		}
	}
	// The session's bottleneck: the limiting stage and shares adding up to 100%.
	bn := b.text(`#session-facts dt:last-of-type + dd`)
	m := regexp.MustCompile(`^(source|proxy|network|target) \(source (\d+)%, proxy (\d+)%, network (\d+)%, target (\d+)%\)$`).FindStringSubmatch(bn)
	sum := 0
	for _, v := range m[min(len(m), 2):] {
		n, _ := strconv.Atoi(v)
		sum += n
	}
	if m == nil || sum < 98 || sum > 102 {
		t.Fatalf("bottleneck %q (shares add up to %d%%)", bn, sum)
	}
	b.do("open a task's log", chromedp.Click(chromedp.CSS("#task-logs details summary")),
		chromedp.WaitVisible(chromedp.Search(`//ol[@class="log"]/li[contains(., "started on proxy proxy1")]`)))
	if vms := b.text(`section[aria-label="Virtual machines"] tbody`); !strings.Contains(vms, "vm1") || !strings.Contains(vms, "success") {
		t.Fatalf("VM results %q", vms)
	}
	b.saveScreenshot("sessions.png", chromedp.FullScreenshot(100))

	// A job whose disk does not exist: found with the list's filter, its
	// page shows the reason.
	if res := c.runJobAny("broken"); res.Status != "failed" {
		t.Fatalf("broken job: %+v", res)
	}
	b.do("list the sessions of one job", chromedp.Navigate(base+"/console/sessions?job=nightly"),
		chromedp.WaitVisible(chromedp.Search(`//div[@id="session-list"]//td[text()="nightly"]`)))
	if rows := b.text("#session-list tbody"); strings.Contains(rows, "broken") {
		t.Fatalf("the job filter shows another job's session: %q", rows)
	}
	// Every job's failed sessions ("broken" shows only once the form's
	// filter applied).
	b.do("filter the failed sessions",
		chromedp.SetValue(chromedp.CSS("#filter-job"), ""),
		chromedp.SetValue(chromedp.CSS("#filter-state"), "failed"),
		chromedp.Click(chromedp.CSS("#session-filter button")),
		chromedp.WaitVisible(chromedp.Search(`//td[text()="broken"]`)))
	if rows := b.text("#session-list tbody"); strings.Contains(rows, "nightly") {
		t.Fatalf("the failed filter shows the successful session: %q", rows)
	}
	b.do("open the failed session", chromedp.Click(chromedp.Search(`//td[text()="broken"]/preceding-sibling::td/a`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-session-done="failed"]`)),
		chromedp.WaitVisible(chromedp.CSS("#session-failure")))
	if why := b.text("#session-failure"); !strings.Contains(why, missing) {
		t.Fatalf("failure shown as %q, want it to name %s", why, missing)
	}
	// The disk appears; "retry failed VMs" runs vm2 again, in a new session.
	if err := os.Link(filepath.Join(dir, "vm1-disk1.img"), missing); err != nil {
		t.Fatal(err)
	}
	b.do("retry the failed VMs", chromedp.Click(chromedp.CSS("#session-retry")),
		chromedp.WaitVisible(chromedp.CSS(`body[data-session-done="success"]`)))
	if title := b.text(`section[aria-label="Disks"] tbody`); !strings.Contains(title, "vm2") || strings.Contains(title, "vm1") {
		t.Fatalf("the retry's disks: %q", title)
	}
	if n := browserEval[float64](b, `document.querySelectorAll("#session-retry").length`); n != 0 {
		t.Fatal("a successful session offers a retry")
	}

	// Restore disk 1 of the point to a file on the proxy.
	pointID := taskPoint(t, c, id)
	target := filepath.Join(root, "vm1-disk1.img")
	b.do("restore a disk", chromedp.Navigate(base+"/console/points"),
		chromedp.WaitVisible(chromedp.CSS(`button[data-restore="`+pointID+`"]`)),
		chromedp.Click(chromedp.CSS(`button[data-restore="`+pointID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#restore-form")),
		chromedp.SetValue(chromedp.CSS("#restore-disk"), "1"),
		chromedp.SendKeys(chromedp.CSS("#restore-target"), target),
		chromedp.Click(chromedp.CSS("#restore-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#restore-result[data-state]`)))
	if st := b.text("#restore-result"); !strings.HasSuffix(st, ": success") {
		t.Fatalf("restore: %q", st)
	}
	if got, want := fileSHA256(t, target), fileSHA256(t, filepath.Join(dir, "vm1-disk1.img")); got != want {
		t.Fatalf("restored disk sha256 %x, source %x", got, want)
	}
	facts := browserEval[string](b, `[...document.querySelector("section[aria-label=vm1] tbody tr").cells].map((c) => c.textContent).join("|")`)
	// Time, Job, Disks, Size, Stored, Scan, Copies, ID, Actions
	if cells := strings.Split(facts, "|"); len(cells) != 9 || cells[1] != "nightly" || cells[2] != "2" || cells[3] != "18.0 MiB" ||
		cells[5] != "not scanned" || cells[6] != "1 (repo1)" || cells[7] != pointID {
		t.Fatalf("point row %q", cells)
	}
	b.saveScreenshot("points.png", chromedp.FullScreenshot(100))
	// The same target again without "replace" is refused with the reason.
	b.do("restore over an existing file", chromedp.Click(chromedp.CSS("#restore-submit")),
		chromedp.WaitVisible(chromedp.CSS(`#restore-result[data-state="failed"]`)))
	if msg := b.text("#restore-result"); !strings.Contains(msg, "force") && !strings.Contains(msg, "exists") {
		t.Fatalf("restore over an existing file: %q, want the reason", msg)
	}

	// Instant VM Recovery of the point over NBD, then stopped.
	nbdAddr := freeAddr(t)
	b.do("start instant recovery", chromedp.Click(chromedp.CSS(`button[data-instant="`+pointID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#ir-form")),
		chromedp.SendKeys(chromedp.CSS("#ir-nbd"), nbdAddr),
		chromedp.Click(chromedp.CSS("#ir-submit")),
		chromedp.WaitVisible(chromedp.CSS("#ir-cert")),
		chromedp.WaitVisible(chromedp.Search(`//div[@id="running-ir"]//td[contains(., "`+nbdAddr+`")]`)))
	if cert := browserEval[string](b, `document.getElementById("ir-cert").value`); !strings.HasPrefix(cert, "-----BEGIN CERTIFICATE-----") {
		t.Fatalf("NBD client certificate %q", cert)
	}
	if key := browserEval[string](b, `document.getElementById("ir-key").value`); !strings.Contains(key, "PRIVATE KEY") {
		t.Fatal("no NBD client key shown")
	}
	if conn, err := net.Dial("tcp", nbdAddr); err != nil {
		t.Fatalf("the NBD export does not answer: %v", err)
	} else {
		conn.Close()
	}
	b.do("stop instant recovery", chromedp.Click(chromedp.CSS("#running-ir button[data-stop]")),
		chromedp.WaitVisible(chromedp.Search(`//div[@id="running-ir"]/p[text()="No instant recovery is running."]`)))
	if out := c.e.ok("session", "list", "--json"); strings.Contains(out, `"running"`) {
		t.Fatalf("a session still runs after stop: %s", out)
	}
	consoleLogout(b)

	// A restore operator may restore; a viewer sees no action and the API
	// refuses it (403).
	consoleLogin(b, base, "/console/", "rita", pw["rita"], "#signed-in")
	b.do("the restore operator sees the restore action", chromedp.Navigate(base+"/console/points"),
		chromedp.WaitVisible(chromedp.CSS(`button[data-restore="`+pointID+`"]`)))
	consoleLogout(b)
	consoleLogin(b, base, "/console/", "victor", pw["victor"], "#signed-in")
	b.do("the viewer sees the points", chromedp.Navigate(base+"/console/points"),
		chromedp.WaitVisible(chromedp.Search(`//code[text()="`+pointID+`"]`)),
		chromedp.WaitVisible(chromedp.Search(`//h2[text()="Running instant recoveries"]`)))
	if n := browserEval[float64](b, `document.querySelectorAll("[data-restore], [data-instant], [data-stop]").length`); n != 0 {
		t.Fatalf("a viewer sees %v restore or instant recovery actions", n)
	}
	again := filepath.Join(root, "viewer.img")
	code := browserEval[float64](b, `fetch("/api/v1/restores", {method: "POST", headers: {"X-CSRF-Token": window.Holdfast.csrf,
		"Content-Type": "application/json"}, body: JSON.stringify({point: "`+pointID+`", disk: 1, target: "`+again+`"})}).then((r) => r.status)`)
	if code != 403 {
		t.Fatalf("viewer POST /api/v1/restores: HTTP %v", code)
	}
	if _, err := os.Stat(again); err == nil {
		t.Fatal("the viewer's restore wrote a file")
	}
	b.do("the viewer opens the failed session", chromedp.Navigate(base+"/console/sessions?state=failed"),
		chromedp.Click(chromedp.Search(`//td[text()="broken"]/preceding-sibling::td/a`)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-session-done="failed"]`)))
	if n := browserEval[float64](b, `document.querySelectorAll("#session-retry, #session-cancel").length`); n != 0 {
		t.Fatal("a viewer sees retry or cancel")
	}
	if code := browserEval[float64](b, `fetch("/api/v1/sessions/" + new URLSearchParams(location.search).get("id") + "/retry",
		{method: "POST", headers: {"X-CSRF-Token": window.Holdfast.csrf}}).then((r) => r.status)`); code != 403 {
		t.Fatalf("viewer POST retry: HTTP %v", code)
	}
	if p := b.problems(); len(p) != 0 {
		t.Fatalf("console errors: %q", p)
	}
	if v := browserEval[[]string](b, "window.__csp"); len(v) != 0 {
		t.Fatalf("CSP violations: %q", v)
	}
}

// taskPoint is the restore point a session's tasks made.
func taskPoint(t *testing.T, c *cluster, id int64) string {
	t.Helper()
	var res jobResult
	se := c.session(id)
	if err := json.Unmarshal(se.Result, &res); err != nil || len(res.VMs) != 1 || res.VMs[0].Point == "" {
		t.Fatalf("session %d result %s: %v", id, se.Result, err)
	}
	return res.VMs[0].Point
}
