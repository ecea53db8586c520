package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// consoleLogin logs user in on the login page the browser is on (any
// console page sends it there) and waits for the page to show wait.
func consoleLogin(b *browserSession, base, page, user, password, wait string) {
	b.t.Helper()
	b.do("log in as "+user, chromedp.Navigate(base+page), chromedp.WaitVisible(chromedp.CSS("#login-form")),
		chromedp.SendKeys(chromedp.CSS("#user"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#login-submit")),
		chromedp.WaitVisible(chromedp.CSS(wait)))
}

// TestConsoleJobsInBrowser drives the Jobs page in headless chromium
// against a real server with a repository agent and a proxy: an operator
// creates a job in the wizard (VMs searched and picked from an image
// source, repository, schedule with its next runs, retention, throttle),
// an invalid schedule shows the API's own error, the job runs and the list
// follows it to success, a run without a proxy is stopped, a job is
// disabled, enabled and deleted; a viewer sees no action and the API
// refuses the viewer's session anyway.
func TestConsoleJobsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process browser test")
	}
	chrome := chromiumPath(t)
	c := newCluster(t, "")
	base := "https://" + c.listen
	dir := c.e.dir
	images := filepath.Join(dir, "site-a")
	if err := os.Mkdir(images, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"web-1.img", "web-2.img", "db-1.img"} {
		writeImage(t, filepath.Join(images, f), 1<<20, map[int64][]byte{0: randomBytes(64 << 10)})
	}
	c.e.ok("source", "add", "site-a", "--type", "image", "--address", images)
	c.addRepository("repo1", 1, nil)
	c.addProxy("proxy1", 1)
	c.waitAgents("repo1", "proxy1")
	files := map[string]string{"op-pw": "olga-Console-pw-1", "viewer-pw": "victor-Console-pw-1", "job-pw": "correct horse"}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.e.ok("user", "add", "olga", "--role", "backup_operator", "--password-file", filepath.Join(dir, "op-pw"))
	c.e.ok("user", "add", "victor", "--role", "viewer", "--password-file", filepath.Join(dir, "viewer-pw"))
	c.e.ok("job", "create", "old", "--vm", "old=/images/old.img", "--repository", "repo1",
		"--password-file", filepath.Join(dir, "job-pw"))

	b := newBrowserSession(t, chrome)
	consoleLogin(b, base, "/console/jobs", "olga", files["op-pw"], `tr[data-job="old"] button[data-action="run"]`)

	// The wizard, step 1: a name and VMs searched and picked from the source.
	b.do("open the wizard", chromedp.Click(chromedp.CSS("#job-new")), chromedp.WaitVisible(chromedp.CSS("#job-form")),
		chromedp.SendKeys(chromedp.CSS("#job-name"), "web"),
		chromedp.WaitVisible(chromedp.CSS(`label[for="vm-site-a-db-1"]`)))
	if n := browserEval[float64](b, `document.querySelectorAll("#vm-list li").length`); n != 3 {
		t.Fatalf("the source lists %v VMs, want 3", n)
	}
	b.do("search", chromedp.SendKeys(chromedp.CSS("#vm-search"), "web"),
		chromedp.WaitNotPresent(chromedp.CSS(`label[for="vm-site-a-db-1"]`)))
	if n := browserEval[float64](b, `document.querySelectorAll("#vm-list li").length`); n != 2 {
		t.Fatalf("searching web shows %v VMs, want 2", n)
	}
	b.do("pick web-1 and web-2", chromedp.Click(chromedp.CSS(`[id="vm-site-a-web-1"]`)),
		chromedp.Click(chromedp.CSS(`[id="vm-site-a-web-2"]`)),
		chromedp.WaitVisible(chromedp.Search(`//ul[@id="vm-chosen"]/li[starts-with(., "web-2 from site-a")]`)))
	b.screenshot("jobs-wizard.png")

	// Step 2: repository and password; step 3: the schedule's next runs.
	// Enter in a field moves on a step (keyboard use); it does not save.
	b.do("step 2", chromedp.SendKeys(chromedp.CSS("#vm-search"), kb.Enter), chromedp.WaitVisible(chromedp.CSS("#job-repository")),
		chromedp.SetValue(chromedp.CSS("#job-repository"), "repo1"),
		chromedp.SendKeys(chromedp.CSS("#job-password"), files["job-pw"]))
	if sent := browserEval[bool](b, `!document.getElementById("job-error").hidden`); sent {
		t.Fatalf("Enter sent the unfinished job: %s", b.text("#job-error"))
	}
	b.do("step 3", chromedp.Click(chromedp.CSS("#wizard-next")), chromedp.WaitVisible(chromedp.CSS("#job-schedule")),
		chromedp.SendKeys(chromedp.CSS("#job-schedule"), "0 3 * * *"),
		chromedp.WaitVisible(chromedp.CSS("#schedule-next ul.next-runs")))
	if n := browserEval[float64](b, `document.querySelectorAll("#schedule-next li").length`); n != 5 {
		t.Fatalf("%v next runs shown, want 5", n)
	}
	b.screenshot("jobs-wizard-schedule.png")
	// An invalid schedule: the preview shows the API's message.
	bad := "0 25 * * *"
	browserEval[string](b, `document.getElementById("job-schedule").value = ""`)
	b.do("an invalid schedule", chromedp.SendKeys(chromedp.CSS("#job-schedule"), bad),
		chromedp.WaitVisible(chromedp.CSS("#schedule-error")))
	code, body := c.apiDo(context.Background(), "GET", "/api/v1/schedule/preview?schedule="+url.QueryEscape(bad), "")
	var apiErr apitypes.ErrorBody
	if err := json.Unmarshal([]byte(body), &apiErr); err != nil || code != 400 || apiErr.Error == "" {
		t.Fatalf("preview of %q: HTTP %d %s", bad, code, body)
	}
	if got := b.text("#schedule-error"); got != apiErr.Error {
		t.Fatalf("the wizard says %q, the API %q", got, apiErr.Error)
	}

	// Step 4: retention and throttle; step 5: saving sends the job, and
	// the API's refusal of the schedule brings the schedule step back.
	b.do("step 4", chromedp.Click(chromedp.CSS("#wizard-next")), chromedp.WaitVisible(chromedp.CSS("#keep-last")),
		chromedp.SendKeys(chromedp.CSS("#keep-last"), "7"),
		chromedp.SendKeys(chromedp.CSS("#job-throttle"), "day: 200MiB/s mon-fri 08:00-18:00"))
	b.do("review and save", chromedp.Click(chromedp.CSS("#wizard-next")), chromedp.WaitVisible(chromedp.CSS("#job-review")),
		chromedp.Click(chromedp.CSS("#job-save")), chromedp.WaitVisible(chromedp.CSS("#job-error")),
		chromedp.WaitVisible(chromedp.CSS(`#job-schedule[aria-invalid="true"]`)))
	if got := b.text("#job-error"); got != apiErr.Error {
		t.Fatalf("the wizard shows %q after saving, the API said %q", got, apiErr.Error)
	}
	b.screenshot("jobs-wizard-error.png")
	browserEval[string](b, `document.getElementById("job-schedule").value = ""`)
	b.do("fix the schedule and save", chromedp.SendKeys(chromedp.CSS("#job-schedule"), "0 3 * * *"),
		chromedp.Click(chromedp.CSS("#wizard-next")), chromedp.Click(chromedp.CSS("#wizard-next")),
		chromedp.WaitVisible(chromedp.CSS("#job-save")), chromedp.Click(chromedp.CSS("#job-save")),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-job="web"] button[data-action="run"]`)))
	var job apitypes.Job
	if err := json.Unmarshal([]byte(c.e.ok("job", "show", "web", "--json")), &job); err != nil {
		t.Fatal(err)
	}
	var def struct {
		Select []struct {
			Source  string `json:"source"`
			Pattern string `json:"pattern"`
		} `json:"select"`
		Repository string         `json:"repository"`
		Retention  map[string]int `json:"retention"`
		Throttle   []string       `json:"throttle"`
	}
	if err := json.Unmarshal(job.Definition, &def); err != nil {
		t.Fatal(err)
	}
	if job.Schedule != "0 3 * * *" || !job.Enabled || job.PasswordRef == "" || def.Repository != "repo1" ||
		len(def.Select) != 2 || def.Select[0].Pattern != "web-1" || def.Retention["keep_last"] != 7 || len(def.Throttle) != 1 {
		t.Fatalf("the wizard made job %+v with %s", job, job.Definition)
	}

	// Run it: the list follows the session to its end.
	b.do("run the job", chromedp.Click(chromedp.CSS(`tr[data-job="web"] button[data-action="run"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-job="web"] .state-success`)))
	b.screenshot("jobs.png")
	var points []apitypes.Point
	if err := json.Unmarshal([]byte(c.e.ok("point", "list", "--json")), &points); err != nil || len(points) != 2 {
		t.Fatalf("points after the run: %d %v", len(points), err)
	}

	// Without a proxy a run waits: the list offers Stop, which cancels it.
	c.kill(c.procs["proxy1"])
	b.do("run without a proxy", chromedp.Click(chromedp.CSS(`tr[data-job="web"] button[data-action="run"]`)),
		chromedp.Click(chromedp.CSS(`tr[data-job="web"] button[data-action="stop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-job="web"] .state-cancelled`)))

	// Edit: the wizard starts from the stored job and keeps what it does
	// not change (the VMs, the sealed password).
	b.do("edit the job", chromedp.Click(chromedp.CSS(`tr[data-job="web"] button[data-action="edit"]`)),
		chromedp.WaitVisible(chromedp.Search(`//ul[@id="vm-chosen"]/li[starts-with(., "web-1 from site-a")]`)),
		chromedp.Click(chromedp.CSS("#wizard-next")), chromedp.Click(chromedp.CSS("#wizard-next")),
		chromedp.WaitVisible(chromedp.CSS("#schedule-next ul.next-runs")))
	browserEval[string](b, `document.getElementById("job-schedule").value = ""`)
	b.do("save the edit", chromedp.SendKeys(chromedp.CSS("#job-schedule"), "@daily"),
		chromedp.Click(chromedp.CSS("#wizard-next")), chromedp.Click(chromedp.CSS("#wizard-next")),
		chromedp.Click(chromedp.CSS("#job-save")),
		chromedp.WaitVisible(chromedp.Search(`//tr[@data-job="web"]/td[text()="@daily"]`)))
	var edited apitypes.Job
	if err := json.Unmarshal([]byte(c.e.ok("job", "show", "web", "--json")), &edited); err != nil {
		t.Fatal(err)
	}
	def.Select, def.Retention = nil, nil
	if err := json.Unmarshal(edited.Definition, &def); err != nil {
		t.Fatal(err)
	}
	if edited.Schedule != "@daily" || edited.PasswordRef != job.PasswordRef || len(def.Select) != 2 ||
		def.Select[1].Pattern != "web-2" || def.Retention["keep_last"] != 7 {
		t.Fatalf("the edit changed more than the schedule: %+v %s", edited, edited.Definition)
	}

	// Disable, enable, delete (confirmed in the page).
	b.do("disable", chromedp.Click(chromedp.CSS(`tr[data-job="old"] button[data-action="disable"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-job="old"] button[data-action="enable"]`)))
	if en := b.text(`tr[data-job="old"] td:nth-of-type(3)`); en != "no" {
		t.Fatalf("a disabled job shows enabled %q", en)
	}
	b.do("enable", chromedp.Click(chromedp.CSS(`tr[data-job="old"] button[data-action="enable"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-job="old"] button[data-action="disable"]`)))
	b.do("delete", chromedp.Click(chromedp.CSS(`tr[data-job="old"] button[data-action="delete"]`)),
		chromedp.Click(chromedp.CSS(`tr[data-job="old"] button[data-action="confirm-delete"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-job="old"]`)))
	if out := c.e.ok("job", "list"); strings.Contains(out, "old") {
		t.Fatalf("deleted job still listed:\n%s", out)
	}
	if p := b.problems(); len(p) != 0 {
		t.Fatalf("console errors: %q", p)
	}
	if v := browserEval[[]string](b, "window.__csp"); len(v) != 0 {
		t.Fatalf("CSP violations: %q", v)
	}

	// A viewer sees the jobs and no action; the API refuses it anyway.
	v := newBrowserSession(t, chrome)
	consoleLogin(v, base, "/console/jobs", "victor", files["viewer-pw"], `tr[data-job="web"] .state-cancelled`)
	if n := browserEval[float64](v, `document.querySelectorAll("#job-new, [data-action]").length`); n != 0 {
		t.Fatalf("a viewer sees %v job actions", n)
	}
	for _, req := range []string{
		`fetch("/api/v1/jobs/web/run", {method: "POST", headers: {"X-CSRF-Token": window.Holdfast.csrf}})`,
		`fetch("/api/v1/jobs", {method: "POST", headers: {"X-CSRF-Token": window.Holdfast.csrf, "Content-Type": "application/json"},
			body: JSON.stringify({name: "x", definition: {select: [{source: "site-a"}], repository: "repo1"}})})`,
		`fetch("/api/v1/sources/site-a/vms")`,
	} {
		if code := browserEval[float64](v, req+`.then((r) => r.status)`); code != 403 {
			t.Fatalf("viewer %s: HTTP %v", req, code)
		}
	}
	if p := v.problems(); len(p) != 0 {
		t.Fatalf("viewer console errors: %q", p)
	}
}
