package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleDashboardInBrowser drives the Dashboard in headless chromium
// against a real server with a repository agent and a proxy: the agents
// are shown online, the repository's capacity (from its heartbeat) with a
// meter, a job's VM with a short RPO and no point listed as outside it; a
// job run while the page is open is counted in the 24 h summary and the
// chart by the page's own polling, without a reload. No console errors or
// CSP violations.
func TestConsoleDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process browser test")
	}
	chrome := chromiumPath(t)
	c := newCluster(t, "")
	base := "https://" + c.listen
	dir := c.e.dir
	writeImage(t, filepath.Join(dir, "web.img"), 1<<20, map[int64][]byte{0: randomBytes(64 << 10)})
	c.addRepository("repo1", 1, nil)
	c.addProxy("proxy1", 1)
	c.waitAgents("repo1", "proxy1")
	files := map[string]string{"viewer-pw": "victor-Console-pw-1", "job-pw": "correct horse"}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.e.ok("user", "add", "victor", "--role", "viewer", "--password-file", filepath.Join(dir, "viewer-pw"))
	c.e.ok("job", "create", "web", "--vm", "web="+filepath.Join(dir, "web.img"), "--repository", "repo1",
		"--password-file", filepath.Join(dir, "job-pw"))
	// On demand with an explicit RPO and never run: its VM is outside it.
	c.apiPost(t, "/api/v1/jobs", `{"name":"late","definition":{"vms":[{"name":"late-vm","disks":["/images/late.img"]}],
		"repository":"repo1","rpo":"90m"}}`)

	b := newBrowserSession(t, chrome)
	consoleLogin(b, base, "/console/", "victor", files["viewer-pw"], `#content[data-loaded="true"]`)
	if got := b.text(`#session-counts li[data-state="success"] strong`); got != "0" {
		t.Fatalf("before any run the dashboard counts %s successful sessions", got)
	}
	b.do("the VM outside its RPO", chromedp.WaitVisible(chromedp.Search(
		`//section[@aria-label="VMs outside their RPO"]//tr[td[1][text()="late-vm"] and td[2][text()="late"]]/td[4][text()="1 h 30 min"]`)))
	b.do("the agents online", chromedp.WaitVisible(chromedp.Search(
		`//section[@aria-label="Agents"]//tr[td[1][text()="proxy"] and td[2][text()="1"] and td[3][text()="0"]]`)),
		chromedp.WaitVisible(chromedp.Search(
			`//section[@aria-label="Agents"]//tr[td[1][text()="repository"] and td[2][text()="1"] and td[3][text()="0"]]`)))
	// The repository agent reports its file system's size and free space.
	b.do("the repository's capacity", chromedp.WaitVisible(chromedp.Search(
		`//section[@aria-label="Repositories"]//tr[td[1][text()="repo1"] and td[2][text()="online"]]/td[5]/meter`)))
	size := b.text(`#dash-repositories tbody tr td:nth-of-type(3)`)
	free := b.text(`#dash-repositories tbody tr td:nth-of-type(4)`)
	if !strings.Contains(size, "iB") || !strings.Contains(free, "iB") {
		t.Fatalf("repository size %q free %q", size, free)
	}
	if ok := browserEval[bool](b, `(() => { const m = document.querySelector("#dash-repositories meter");
		return m.max > 0 && m.value > 0 && m.value <= m.max; })()`); !ok {
		t.Fatal("the repository's meter shows no use")
	}

	// A run while the page is open: polling counts it.
	if res := c.runJob("web"); res.Status != "success" {
		t.Fatalf("run: %+v", res)
	}
	b.do("the finished session counted", chromedp.WaitVisible(chromedp.Search(
		`//ul[@id="session-counts"]/li[@data-state="success"]/strong[text()="1"]`)))
	if n := browserEval[float64](b, `document.querySelectorAll("svg.hours rect.s-success").length`); n != 1 {
		t.Fatalf("the chart has %v success bars, want 1", n)
	}
	alt := browserEval[string](b, `document.getElementById("hours-title").textContent`)
	if !strings.Contains(alt, "1 in all") || !strings.Contains(alt, "1 success") {
		t.Fatalf("the chart's text alternative says %q", alt)
	}
	if role := browserEval[string](b, `document.querySelector("svg.hours").getAttribute("role")`); role != "img" {
		t.Fatalf("chart role %q", role)
	}
	if got := b.text("#dash-running"); got != "No session is running." {
		t.Fatalf("running sessions after the run: %q", got)
	}
	b.screenshot("dashboard-live.png")

	// Without a proxy a run waits: the polling lists it as running.
	c.kill(c.procs["proxy1"])
	id := c.startJob("web")
	b.do("the waiting session listed", chromedp.WaitVisible(chromedp.Search(fmt.Sprintf(
		`//table[@id="running-table"]//tr[td[1]/a[text()="#%d"] and td[2][text()="web"] and (td[4][text()="queued"] or td[4][text()="running"])]`, id))))
	if p := b.problems(); len(p) != 0 {
		t.Fatalf("console errors: %q", p)
	}
	if v := browserEval[[]string](b, "window.__csp"); len(v) != 0 {
		t.Fatalf("CSP violations: %q", v)
	}
}
