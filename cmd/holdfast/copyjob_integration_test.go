package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// copyJobJSON is a copy session's result document.
type copyJobJSON struct {
	Status       string   `json:"status"`
	Error        string   `json:"error"`
	Repository   string   `json:"repository"`
	ToRepository string   `json:"to_repository"`
	Copied       []string `json:"copied"`
	Skipped      []string `json:"skipped"`
	Forgotten    []string `json:"forgotten"`
	Warnings     []string `json:"warnings"`
	Duration     float64  `json:"duration_seconds"`
	Copy         struct {
		PointsCopied  int64 `json:"points_copied"`
		PointsSkipped int64 `json:"points_skipped"`
		ChunksSent    int64 `json:"chunks_sent"`
		ChunksPresent int64 `json:"chunks_present"`
		BytesSent     int64 `json:"bytes_sent"`
	} `json:"copy"`
}

// waitCopySession waits for the n-th session of job (1-based) to end and
// returns its result: a chained job's session starts after the job it
// follows has ended.
func waitCopySession(t *testing.T, c *cluster, job string, n int) copyJobJSON {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var ss []struct{ ID int64 }
		if err := json.Unmarshal([]byte(c.e.ok("session", "list", "--job", job, "--json")), &ss); err != nil {
			t.Fatal(err)
		}
		if len(ss) >= n {
			se := c.waitSession(ss[len(ss)-n].ID, func(se sessionTasks) bool { return se.State != "running" && se.State != "queued" })
			var res copyJobJSON
			if err := json.Unmarshal(se.Result, &res); err != nil {
				t.Fatalf("session %d: %v\n%s", se.ID, err, se.Result)
			}
			return res
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session %d of job %s", n, job)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCopyJob runs, with a real server, proxy and two repository agents
// (their repositories with different passwords): a backup job, and a copy
// job chained after it (--after) that copies the new points to the second
// repository with the target's sealed password. The copy restores the
// source's disk from the target with the CLI, a copy of what the target
// has sends no chunk, the job's retention at the target keeps only what it
// says while the source keeps every point, and the copied points are
// listed by the server.
func TestCopyJob(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := newCluster(t, "")
	dir := c.e.dir
	reach := filepath.Join(dir, "reach")
	if err := os.MkdirAll(reach, 0o755); err != nil {
		t.Fatal(err)
	}
	pw, pw2 := filepath.Join(dir, "pw"), filepath.Join(dir, "pw2")
	for f, s := range map[string]string{pw: "correct horse\n", pw2: "battery staple\n"} {
		if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r1 := c.addRepository("repo1", 2, nil)
	r2 := c.addRepository("offsite", 2, nil, "--password-file", pw2)
	c.addProxy("proxy1", 2, "--reach", reach+"/")
	c.waitAgents("repo1", "offsite", "proxy1")

	img := filepath.Join(reach, "c1.img")
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-file", pw, "--vm", "c1="+img)
	c.e.ok("job", "create", "offsite-copy", "--kind", "copy", "--repository", "repo1", "--password-file", pw,
		"--to-repository", "offsite", "--to-password-file", pw2, "--vms", "c*", "--newer-only", "--after", "nightly", "--retention-last", "2")
	show := c.e.ok("job", "show", "offsite-copy")
	for _, want := range []string{"Kind:", "copy", "Copies to:", "offsite", "c*", "after nightly", "keep last 2", "Target password:", "sealed on the server"} {
		if !strings.Contains(show, want) {
			t.Errorf("job show lacks %q:\n%s", want, show)
		}
	}
	if raw := c.e.ok("job", "show", "offsite-copy", "--json"); strings.Contains(raw, "battery") {
		t.Fatalf("the target password is shown: %s", raw)
	}
	if out := c.e.ok("job", "list"); !strings.Contains(out, "→ offsite (c*)") {
		t.Errorf("job list:\n%s", out)
	}

	disks := make([][]byte, 3)
	var points []string
	for run := range 3 {
		disks[run] = randomBytes(4 << 20)
		if run > 0 { // an incremental: one of four chunks changes
			disks[run] = append(disks[run][:1<<20], disks[run-1][1<<20:]...)
		}
		writeImage(t, img, 4<<20, map[int64][]byte{0: disks[run]})
		b := c.runJob("nightly")
		points = append(points, b.VMs[0].Point)
		res := waitCopySession(t, c, "offsite-copy", run+1)
		if res.Status != "success" || len(res.Copied) != 1 || res.Copied[0] != b.VMs[0].Point || res.Copy.ChunksSent == 0 {
			t.Fatalf("copy run %d: %+v", run+1, res)
		}
		if run > 0 && (res.Copy.ChunksSent != 1 || res.Copy.ChunksPresent != 3) {
			t.Errorf("incremental copy run %d: %d chunks sent, %d present; want 1 and 3", run+1, res.Copy.ChunksSent, res.Copy.ChunksPresent)
		}
		if want := max(0, run-1); len(res.Forgotten) != want || (want == 1 && res.Forgotten[0] != points[0]) {
			t.Errorf("copy run %d forgot %v, want %d (the oldest, %s)", run+1, res.Forgotten, want, points[0])
		}
		t.Logf("copy run %d: %d chunks sent (%d bytes), %d present", run+1, res.Copy.ChunksSent, res.Copy.BytesSent, res.Copy.ChunksPresent)
	}

	t.Run("restore from the target", func(t *testing.T) {
		out := filepath.Join(dir, "restored.img")
		c.e.ok("restore", "--repo", r2, "--password-file", pw2, points[2], "--to", out)
		if got, err := os.ReadFile(out); err != nil || !bytes.Equal(got, disks[2]) {
			t.Fatalf("the point restored from the target differs from the source's disk (%v)", err)
		}
	})

	t.Run("again sends nothing", func(t *testing.T) {
		out := c.e.ok("job", "run", "offsite-copy", "--wait", "--json")
		var res copyJobJSON
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if res.Status != "success" || len(res.Copied) != 0 || res.Copy.ChunksSent != 0 || len(res.Forgotten) != 0 {
			t.Errorf("a copy with nothing new: %s", out)
		}
		// The source still holds the point retention forgot at the
		// target: newer_only does not copy it back.
		text := c.e.ok("job", "run", "offsite-copy", "--wait")
		if !strings.Contains(text, "copy repo1 → offsite:") {
			t.Errorf("job run --wait:\n%s", text)
		}
	})

	t.Run("target not registered", func(t *testing.T) {
		c.e.ok("job", "create", "nowhere-copy", "--kind", "copy", "--repository", "repo1", "--password-file", pw,
			"--to-repository", "nowhere")
		r := c.e.run("job", "run", "nowhere-copy", "--wait")
		if r.code != exitFailure || !strings.Contains(r.stdout+r.stderr, `target repository "nowhere" is not registered`) {
			t.Errorf("copy to an unregistered repository: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = c.e.run("job", "create", "self-copy", "--kind", "copy", "--repository", "repo1", "--to-repository", "repo1")
		if r.code != exitUsage || !strings.Contains(r.stderr, "must be another") {
			t.Errorf("copy to its own repository: exit %d %s", r.code, r.stderr)
		}
	})

	t.Run("retention at the target", func(t *testing.T) {
		var src, dst []apitypes.Point
		if err := json.Unmarshal([]byte(c.e.ok("points", "--repo", r1, "--json")), &src); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(c.e.ok("points", "--repo", r2, "--password-file", pw2, "--json")), &dst); err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, p := range dst {
			ids[p.ID] = true
		}
		if len(src) != 3 || len(dst) != 2 || !ids[points[1]] || !ids[points[2]] {
			t.Errorf("source holds %d points, target %+v; want 3 and the newest two %v", len(src), dst, points[1:])
		}
		var listed []apitypes.Point
		if err := json.Unmarshal([]byte(c.e.ok("point", "list", "--repository", "offsite", "--json")), &listed); err != nil {
			t.Fatal(err)
		}
		if len(listed) != 2 || !ids[listed[0].ID] || !ids[listed[1].ID] || listed[0].Job != "offsite-copy" {
			t.Errorf("the server lists at the target %+v, want the two kept copies", listed)
		}
	})

	t.Run("throttled", func(t *testing.T) {
		big := filepath.Join(reach, "t1.img")
		writeImage(t, big, 4<<20, map[int64][]byte{0: randomBytes(4 << 20)})
		c.e.ok("job", "create", "big", "--repository", "repo1", "--password-file", pw, "--vm", "t1="+big)
		c.runJob("big")
		c.e.ok("job", "create", "slow-copy", "--kind", "copy", "--repository", "repo1", "--password-file", pw,
			"--to-repository", "offsite", "--to-password-file", pw2, "--vms", "t1", "--throttle", "lim: 4MiB/s")
		out := c.e.ok("job", "run", "slow-copy", "--wait", "--json")
		var res copyJobJSON
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if res.Status != "success" || len(res.Copied) != 1 || res.Copy.ChunksSent != 4 {
			t.Fatalf("throttled copy: %s", out)
		}
		rate := float64(res.Copy.BytesSent) / res.Duration / (1 << 20)
		t.Logf("copy throttled to 4 MiB/s: %d bytes in %.2fs = %.2f MiB/s", res.Copy.BytesSent, res.Duration, rate)
		// The limit holds whatever the machine's speed (an upper bound).
		if rate > 4.4 {
			t.Errorf("rate %.2f MiB/s, want at most 4 MiB/s + 10%%", rate)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		// Throttled to 1 MiB/s, 8 MiB take seconds: the cancel comes first.
		big := filepath.Join(reach, "t2.img")
		writeImage(t, big, 8<<20, map[int64][]byte{0: randomBytes(8 << 20)})
		c.e.ok("job", "create", "big2", "--repository", "repo1", "--password-file", pw, "--vm", "t2="+big)
		c.runJob("big2")
		c.e.ok("job", "create", "cancelled-copy", "--kind", "copy", "--repository", "repo1", "--password-file", pw,
			"--to-repository", "offsite", "--to-password-file", pw2, "--vms", "t2", "--throttle", "lim: 1MiB/s")
		id := c.startJob("cancelled-copy")
		c.waitSession(id, func(se sessionTasks) bool { return se.State == "running" })
		c.e.ok("session", "cancel", strconv.FormatInt(id, 10))
		se := c.waitSession(id, func(se sessionTasks) bool { return se.State != "running" && se.State != "queued" })
		var res copyJobJSON
		if err := json.Unmarshal(se.Result, &res); err != nil || se.State != "cancelled" || len(res.Copied) != 0 {
			t.Fatalf("cancelled copy: %s %s %v", se.State, se.Result, err)
		}
		var dst []apitypes.Point
		if err := json.Unmarshal([]byte(c.e.ok("points", "--repo", r2, "--password-file", pw2, "--vm", "t2", "--json")), &dst); err != nil {
			t.Fatal(err)
		}
		if len(dst) != 0 {
			t.Errorf("the cancelled copy left points at the target: %+v", dst)
		}
	})
}
