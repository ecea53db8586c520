package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// scanAfterResult is what `job run --wait --json` says of each VM's scan.
type scanAfterResult struct {
	Status string `json:"status"`
	VMs    []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
		Point  string `json:"point"`
		Scan   *struct {
			Result   string `json:"result"`
			Proxy    string `json:"proxy"`
			Findings int    `json:"findings"`
			First    *struct {
				Path      string `json:"path"`
				Signature string `json:"signature"`
			} `json:"first_finding"`
			Recorded bool   `json:"recorded"`
			Summary  string `json:"summary"`
		} `json:"scan"`
	} `json:"vms"`
}

// TestScanAfterBackup: a job with --scan-after (real server, repository
// agent and a proxy with the mount role) backs up an infected VM and a
// clean one; the proxy publishes, scans with clamscan (a test database
// made with sigtool) and unpublishes each new point. The session ends with
// a warning naming the finding, `point list --json` shows the scans, the
// repository holds the scan records, and nothing stays published.
func TestScanAfterBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	needScanTools(t)
	c := newCluster(t, "")
	dir := c.e.dir
	db, _ := scanTestDB(t, dir)
	buildExt4Image(t, filepath.Join(dir, "sick-disk0.img"), map[string]string{"etc/hostname": "sick\n", "home/u/eicar.com": eicarString})
	buildExt4Image(t, filepath.Join(dir, "well-disk0.img"), map[string]string{"etc/hostname": "well\n"})
	repoPath := c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 3)
	c.waitAgents("repo1", "proxy1")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.e.ok("job", "create", "scanned", "--repository", "repo1", "--password-file", pw,
		"--vm", vmSpec(dir, "sick", 1), "--vm", vmSpec(dir, "well", 1), "--scan-after", "--scan-clamav-db", db)
	if out := c.e.ok("job", "show", "scanned"); !strings.Contains(out, "clamscan (database "+db+")") {
		t.Errorf("job show: %s", out)
	}
	out := c.e.ok("job", "run", "scanned", "--wait", "--json")
	var res scanAfterResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.VMs) != 2 {
		t.Fatalf("job run: %v\n%s", err, out)
	}
	if res.Status != "warning" {
		t.Errorf("session status %s, want warning (an infected point)", res.Status)
	}
	scans := map[string]string{}
	for _, vm := range res.VMs {
		s := vm.Scan
		if s == nil || vm.Point == "" || s.Proxy != "proxy1" || !s.Recorded {
			t.Fatalf("VM %s: %+v scan %+v", vm.Name, vm, s)
		}
		scans[vm.Point] = s.Result
		switch vm.Name {
		case "sick":
			if vm.Status != "warning" || s.Result != repo.ScanInfected || s.Findings != 1 || s.First == nil ||
				s.First.Path != "/home/u/eicar.com" || !strings.HasPrefix(s.Summary, "scan: infected 1 (disk0-p1:/home/u/eicar.com: ") {
				t.Errorf("infected VM: %s %+v first %+v", vm.Status, s, s.First)
			}
		case "well":
			if vm.Status != "success" || s.Result != repo.ScanClean || s.Summary != "scan: clean" {
				t.Errorf("clean VM: %s %+v", vm.Status, s)
			}
		}
	}
	// The server's point list shows the scans.
	var ps []apitypes.Point
	if err := json.Unmarshal([]byte(c.e.ok("point", "list", "--json")), &ps); err != nil || len(ps) != 2 {
		t.Fatalf("point list: %v %+v", err, ps)
	}
	for _, p := range ps {
		if p.Scan == nil || p.Scan.Result != scans[p.ID] || p.Scan.Engine != "clamscan" {
			t.Errorf("point %s (%s): scan %+v, want %s", p.ID, p.VM, p.Scan, scans[p.ID])
		}
	}
	// The repository holds the records the proxy sealed.
	var local []apitypes.Point
	if err := json.Unmarshal([]byte(c.e.ok("points", "--repo", repoPath, "--json")), &local); err != nil || len(local) != 2 {
		t.Fatalf("points: %v %+v", err, local)
	}
	for _, p := range local {
		if p.Scan == nil || p.Scan.Result != scans[p.ID] {
			t.Errorf("repository point %s: scan %+v, want %s", p.ID, p.Scan, scans[p.ID])
		}
	}
	// The text result of a second run names the finding; nothing stays published.
	text := c.e.ok("job", "run", "scanned", "--wait")
	if !strings.Contains(text, "scan: infected 1 (disk0-p1:/home/u/eicar.com: ") || !strings.Contains(text, "scan: clean") {
		t.Errorf("job run --wait:\n%s", text)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "state-proxy1", "publish"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			t.Errorf("publish record left on the proxy: %s", e.Name())
		}
	}
}
