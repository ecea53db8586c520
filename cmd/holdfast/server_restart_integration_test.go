package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// TestServerRestartResumesSession kills the server (SIGKILL) while a job's
// tasks run on a proxy and starts it again: the session is not failed but
// runs its VMs again as the next attempts of the same tasks, and ends
// succeeded with points that restore.
func TestServerRestartResumesSession(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := newCluster(t, "")
	dir := c.e.dir
	writeVMDisks(t, dir, 2)
	repoPath := c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 2, "--restore-root", dir)
	c.waitAgents("repo1", "proxy1")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-file", pw,
		"--vm", vmSpec(dir, "vm1", 2), "--vm", vmSpec(dir, "vm2", 2))
	c.e.ok("job", "edit", "nightly", "--read-limit", "2MiB/s") // seconds per disk: the restart meets running tasks

	id := c.startJob("nightly")
	c.waitTaskRunning(id)
	c.kill(c.server)
	restarted := time.Now()
	c.startServer()

	se := c.waitSession(id, func(se sessionTasks) bool { return se.State != "running" && se.State != "queued" })
	t.Logf("session %d ended %s %v after the server was killed", id, se.State, time.Since(restarted).Round(time.Millisecond))
	var res jobResult
	if err := json.Unmarshal(se.Result, &res); err != nil {
		t.Fatalf("result of session %d: %v\n%s", id, err, se.Result)
	}
	checkJobResult(t, res, 2, 2)
	again := 0
	for _, vm := range res.VMs {
		for _, d := range vm.Disks {
			if d.Attempts >= 2 {
				again++
			}
		}
	}
	if again == 0 {
		t.Errorf("no task ran again after the restart: %+v", res)
	}
	var points []apitypes.Point
	if err := json.Unmarshal([]byte(c.e.ok("point", "list", "--json")), &points); err != nil || len(points) != 2 {
		t.Fatalf("point list: %d points, %v", len(points), err)
	}
	for _, vm := range []string{"vm1", "vm2"} {
		out := filepath.Join(dir, "restored-"+vm+".img")
		c.e.ok("restore", pointOf(t, points, vm), "--disk", "0", "--to", out)
		sameFile(t, out, filepath.Join(dir, fmt.Sprintf("%s-disk0.img", vm)))
	}
	if out := c.e.ok("verify", "--repo", repoPath, "--read-data"); !strings.Contains(out, "no errors found") {
		t.Fatalf("verify: %s", out)
	}
}
