package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/testutil/guestimg"
)

// TestConsolePublishInBrowser: a restore point published from the Restore
// points page (real server, repository agent and proxy; the proxy mounts
// as root) is listed with its proxy, mount directory and filesystems,
// whose files are the guest's; Unpublish ends the session and the proxy
// takes everything down. A viewer sees no Publish or Unpublish.
func TestConsolePublishInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process browser test")
	}
	chrome := chromiumPath(t)
	needPublishHost(t)
	c := newCluster(t, "")
	base := "https://" + c.listen
	dir := c.e.dir
	guestimg.Build(t, filepath.Join(dir, "vm1-disk0.img"), guestimg.Spec{Label: "gpt", Parts: []guestimg.Part{
		{FS: "ext4", SizeMiB: 16, Files: pubBoot}, {FS: "xfs", SizeMiB: 64, Files: pubRoot}}})
	pw := map[string]string{"alice": "alice-Console-pw-1", "victor": "victor-Console-pw-1", "job": "correct horse"}
	for name, v := range pw {
		if err := os.WriteFile(filepath.Join(dir, name+"-pw"), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c.e.ok("user", "add", "alice", "--role", "administrator", "--password-file", filepath.Join(dir, "alice-pw"))
	c.e.ok("user", "add", "victor", "--role", "viewer", "--password-file", filepath.Join(dir, "victor-pw"))
	c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 3)
	c.waitAgents("repo1", "proxy1")
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-file", filepath.Join(dir, "job-pw"),
		"--vm", vmSpec(dir, "vm1", 1))
	res := c.runJob("nightly")
	checkJobResult(t, res, 1, 1)
	point := res.VMs[0].Point

	mnt := filepath.Join(dir, "mnt")
	state := filepath.Join(dir, "state-proxy1", "publish")
	noRecords := func() bool {
		recs, _ := filepath.Glob(filepath.Join(state, "pub-*.json"))
		return len(recs) == 0
	}
	t.Cleanup(func() { // before the proxy stops: whatever a failed test left published
		var ss []apitypes.Session
		_ = json.Unmarshal([]byte(c.e.run("session", "list", "--json").stdout), &ss)
		for _, se := range ss {
			if se.Kind == "publish" && se.State == "running" {
				c.e.run("unpublish", strconv.FormatInt(se.ID, 10))
			}
		}
		waitFor(t, "the proxy to unpublish", noRecords)
	})

	b := newBrowserSession(t, chrome)
	consoleLogin(b, base, "/console/points", "alice", pw["alice"], `button[data-publish="`+point+`"]`)
	b.do("publish the point", chromedp.Click(chromedp.CSS(`button[data-publish="`+point+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#pub-form")),
		chromedp.SendKeys(chromedp.CSS("#pub-dir"), mnt),
		chromedp.Click(chromedp.CSS("#pub-submit")),
		chromedp.WaitVisible(chromedp.Search(`//div[@id="running-pub"]//td[contains(., "`+mnt+`/")]`)))
	row := browserEval[string](b, `[...document.querySelector("#running-pub tbody tr").cells].map((c) => c.textContent).join("|")`)
	// Session, VM, Point, Proxy, Mount directory, Filesystems, Actions
	cells := strings.Split(row, "|")
	if len(cells) != 7 || cells[1] != "vm1" || cells[2] != point || cells[3] != "proxy1" || cells[4] != mnt ||
		!strings.Contains(cells[5], "(ext4)") || !strings.Contains(cells[5], "(xfs)") || cells[6] != "Unpublish" {
		t.Fatalf("publication row %q", cells)
	}
	// The listed mountpoints hold the guest's files.
	var mps []string
	for _, part := range strings.Split(cells[5], "; ") {
		mps = append(mps, strings.SplitN(part, " (", 2)[0])
	}
	for i, files := range []map[string][]byte{pubBoot, pubRoot} {
		for name, want := range files {
			if got, err := os.ReadFile(filepath.Join(mps[i], name)); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s/%s: %v (equal: %v)", mps[i], name, err, bytes.Equal(got, want))
			}
		}
	}
	b.saveScreenshot("points-publish.png", chromedp.FullScreenshot(100))

	b.do("unpublish", chromedp.Click(chromedp.CSS("#running-pub button[data-unpublish]")),
		chromedp.WaitVisible(chromedp.Search(`//div[@id="running-pub"]/p[text()="No point is published."]`)))
	waitFor(t, "the proxy to unpublish", noRecords)
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(info), " "+mnt+"/") {
		t.Errorf("a mount under %s is left", mnt)
	}
	if _, err := os.Stat(mnt); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s is left (%v)", mnt, err)
	}
	consoleLogout(b)

	consoleLogin(b, base, "/console/points", "victor", pw["victor"], `#running-pub`)
	b.do("the viewer sees the points", chromedp.WaitVisible(chromedp.Search(`//code[text()="`+point+`"]`)))
	if n := browserEval[float64](b, `document.querySelectorAll("[data-publish], [data-unpublish]").length`); n != 0 {
		t.Fatalf("a viewer sees %v publish actions", n)
	}
	if p := b.problems(); len(p) != 0 {
		t.Fatalf("console errors: %q", p)
	}
	if v := browserEval[[]string](b, "window.__csp"); len(v) != 0 {
		t.Fatalf("CSP violations: %q", v)
	}
}
