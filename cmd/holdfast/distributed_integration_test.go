package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/testutil/pgtest"
	"github.com/holdfast-backup/holdfast/internal/testutil/sshdtest"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeVMDisks writes 8 VMs × 2 disks: disk 0 holds 3 MiB of random data in
// a 16 MiB sparse image, disk 1 2 MiB of random data.
func writeVMDisks(t *testing.T, dir string, vms int) {
	t.Helper()
	for i := 1; i <= vms; i++ {
		vm := fmt.Sprintf("vm%d", i)
		writeImage(t, filepath.Join(dir, vm+"-disk0.img"), 16<<20, map[int64][]byte{0: randomBytes(2 << 20), 9 << 20: randomBytes(1 << 20)})
		writeImage(t, filepath.Join(dir, vm+"-disk1.img"), 2<<20, map[int64][]byte{0: randomBytes(2 << 20)})
	}
}

// TestDistributed runs the walkthrough of the distributed mode with real
// processes: a server, two repository agents (one behind a link that is
// cut every few MiB), two proxies with two slots each, 8 VMs × 2 disks in
// two jobs (the second scheduled "after" the first); then a proxy killed
// mid-job, a throttled job, refusals, and the server killed mid-job.
func TestDistributed(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	runDistributed(t, "")
}

// TestDistributedPostgres is TestDistributed with the configuration
// database on PostgreSQL (Debian's server, started by the test as root, or
// HOLDFAST_TEST_POSTGRES).
func TestDistributedPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	runDistributed(t, pgtest.FreshDSN(t))
}

func runDistributed(t *testing.T, dsn string) {
	c := newCluster(t, dsn)
	dir := c.e.dir
	writeVMDisks(t, dir, 8)

	r1 := c.addRepository("repo1", 2, nil)
	var cut *relay
	r2 := c.addRepository("repo2", 2, func(addr string) string {
		cut = newRelay(t, addr, 3<<20)
		return cut.ln.Addr().String()
	})
	c.addProxy("proxy1", 2, "--restore-root", dir)
	c.addProxy("proxy2", 2, "--restore-root", dir)
	c.waitAgents("repo1", "repo2", "proxy1", "proxy2")

	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	nightly := []string{"job", "create", "nightly", "--repository", "repo1", "--password-file", pw, "--schedule", "0 2 * * *"}
	offsite := []string{"job", "create", "offsite", "--repository", "repo2", "--password-file", pw,
		"--schedule", "after nightly", "--chunk-size", "256KiB"}
	for i := 1; i <= 4; i++ {
		nightly = append(nightly, "--vm", vmSpec(dir, fmt.Sprintf("vm%d", i), 2))
		offsite = append(offsite, "--vm", vmSpec(dir, fmt.Sprintf("vm%d", i+4), 2))
	}
	c.e.ok(nightly...)
	c.e.ok(offsite...)

	// The first job, then the second fires by its schedule.
	res := c.runJob("nightly")
	checkJobResult(t, res, 4, 2)
	off := waitJobSession(t, c, "offsite")
	var offRes jobResult
	if err := json.Unmarshal(off.Result, &offRes); err != nil {
		t.Fatal(err)
	}
	checkJobResult(t, offRes, 4, 2)
	checkSlots(t, []sessionTasks{c.session(res.Session), off}, map[string]int{"proxy1": 2, "proxy2": 2, "repo1": 2, "repo2": 2})
	proxies := map[string]bool{}
	for _, r := range []jobResult{res, offRes} {
		for _, vm := range r.VMs {
			for _, d := range vm.Disks {
				proxies[d.Proxy] = true
			}
		}
	}
	if !proxies["proxy1"] || !proxies["proxy2"] {
		t.Errorf("tasks ran on %v, want both proxies", proxies)
	}

	// The cut link: every disk arrived, with little sent twice.
	var stored int64
	for _, vm := range offRes.VMs {
		for _, d := range vm.Disks {
			stored += d.BytesWritten
		}
	}
	over := float64(cut.sent.Load())/float64(stored) - 1
	t.Logf("link to repo2 cut %d times; %d bytes through it for %d stored: %.1f%% more", cut.cuts.Load(), cut.sent.Load(), stored, 100*over)
	if cut.cuts.Load() < 1 || over > 0.10 {
		t.Errorf("cut link: %d cuts, %.1f%% overhead (want ≥ 1 cut, ≤ 10%%)", cut.cuts.Load(), 100*over)
	}

	// Points through the server; restores through a proxy are identical.
	var points []apitypes.Point
	if err := json.Unmarshal([]byte(c.e.ok("point", "list", "--json")), &points); err != nil || len(points) != 8 {
		t.Fatalf("point list: %d points, %v", len(points), err)
	}
	for _, tc := range []struct {
		vm   string
		disk int
	}{{"vm3", 0}, {"vm6", 1}} {
		p := pointOf(t, points, tc.vm)
		out := filepath.Join(dir, "restored-"+tc.vm+".img")
		c.e.ok("restore", p, "--disk", fmt.Sprint(tc.disk), "--to", out)
		sameFile(t, out, filepath.Join(dir, fmt.Sprintf("%s-disk%d.img", tc.vm, tc.disk)))
	}
	for _, r := range []string{r1, r2} {
		if out := c.e.ok("verify", "--repo", r, "--read-data"); !strings.Contains(out, "no errors found") {
			t.Fatalf("verify %s: %s", r, out)
		}
	}

	t.Run("proxy killed mid-job", func(t *testing.T) {
		c.e.ok("job", "edit", "nightly", "--read-limit", "2MiB/s")
		id := c.startJob("nightly")
		c.waitSession(id, func(se sessionTasks) bool {
			for _, tk := range se.Tasks {
				if tk.State == "running" && tk.Proxy == "proxy1" {
					return true
				}
			}
			return false
		})
		c.kill(c.procs["proxy1"])
		se := c.waitSession(id, func(se sessionTasks) bool { return se.State != "running" && se.State != "queued" })
		var r jobResult
		if err := json.Unmarshal(se.Result, &r); err != nil {
			t.Fatal(err)
		}
		checkJobResult(t, r, 4, 2)
		moved := 0
		for _, tk := range se.Tasks {
			if tk.Attempt > 1 {
				moved++
				if tk.Proxy != "proxy2" {
					t.Errorf("task %s/%s attempt %d on %s", tk.VM, tk.Disk, tk.Attempt, tk.Proxy)
				}
			}
		}
		if moved == 0 {
			t.Errorf("no task moved to the other proxy: %+v", se.Tasks)
		}
		c.addProxy("proxy1", 2) // back, with its saved credentials
		c.waitAgents("proxy1")
	})

	t.Run("throttled", func(t *testing.T) {
		writeImage(t, filepath.Join(dir, "big-disk0.img"), 16<<20, map[int64][]byte{0: randomBytes(16 << 20)})
		writeImage(t, filepath.Join(dir, "warm-disk0.img"), 1<<20, map[int64][]byte{0: randomBytes(1 << 20)})
		// A first job with the same rules opens the repository on the
		// proxies (key derivation), so the measured one only transfers.
		for _, job := range []string{"warm", "big"} {
			c.e.ok("job", "create", "throttled-"+job, "--repository", "repo1", "--password-file", pw,
				"--vm", vmSpec(dir, job, 1), "--throttle", "lim: 4MiB/s")
		}
		c.runJob("throttled-warm")
		c.runJob("throttled-warm")
		id := c.startJob("throttled-big")
		follow := c.e.ok("session", "show", fmt.Sprint(id), "--follow")
		for _, want := range []string{"big disk 0: running on proxy", "of 16.0 MiB (", "big disk 0: success", "bottleneck:"} {
			if !strings.Contains(follow, want) {
				t.Errorf("session show --follow lacks %q:\n%s", want, follow)
			}
		}
		var r jobResult
		if err := json.Unmarshal(c.session(id).Result, &r); err != nil {
			t.Fatal(err)
		}
		checkJobResult(t, r, 1, 1)
		d := r.VMs[0].Disks[0]
		rate := float64(d.BytesTransferred) / d.Duration / (1 << 20)
		t.Logf("throttled to 4 MiB/s: %d bytes in %.2fs = %.2f MiB/s", d.BytesTransferred, d.Duration, rate)
		// The limit holds whatever the machine's speed; that the rate
		// reaches it is a matter of speed, checked with a fake clock in
		// internal/throttle (a loaded machine may well stay below it).
		if rate > 4.4 {
			t.Errorf("rate %.2f MiB/s, want at most 4 MiB/s + 10%%", rate)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		anon := *c.e
		anon.vars = append(append([]string{}, c.e.vars...), "HOLDFAST_TOKEN=")
		if r := anon.run("job", "run", "nightly"); r.code == 0 || !strings.Contains(r.stderr, "refused the token") {
			t.Errorf("no token: exit %d, %s", r.code, r.stderr)
		}
		viewer := *c.e
		admin, _ := os.ReadFile(filepath.Join(c.data, "admin.token"))
		ts := testServer{url: "https://" + c.listen, ca: filepath.Join(c.data, "ca.pem"), admin: strings.TrimSpace(string(admin))}
		tok := ts.createToken(t, "viewer1", "viewer")
		viewer.vars = append(append([]string{}, c.e.vars...), "HOLDFAST_TOKEN="+tok)
		if r := viewer.run("job", "run", "nightly"); r.code == 0 || !strings.Contains(r.stderr, "your role may not") {
			t.Errorf("viewer: exit %d, %s", r.code, r.stderr)
		}
		viewer.ok("point", "list")
	})

	t.Run("retention and retries", func(t *testing.T) {
		c.e.ok("job", "edit", "nightly", "--retention-last", "1", "--read-limit", "1GiB/s")
		r := c.runJob("nightly")
		checkJobResult(t, r, 4, 2)
		for _, vm := range r.VMs {
			if len(vm.Forgotten) == 0 {
				t.Errorf("VM %s: retention forgot nothing: %+v", vm.Name, vm)
			}
		}
		var ps []apitypes.Point
		if err := json.Unmarshal([]byte(c.e.ok("point", "list", "--vm", "vm1", "--json")), &ps); err != nil || len(ps) != 1 ||
			ps[0].ID != r.VMs[0].Point {
			t.Errorf("points of vm1 after keep-last 1: %+v %v", ps, err)
		}
		var local []apitypes.Point
		localOut := c.e.ok("points", "--repo", r1, "--json")
		if err := json.Unmarshal([]byte(localOut), &local); err != nil {
			t.Fatal(err)
		}
		sameKeys(t, localOut, c.e.ok("point", "list", "--vm", "vm1", "--json"))
		n := 0
		for _, p := range local {
			if p.VM == "vm1" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("repository holds %d points of vm1, want 1", n)
		}

		// A disk that appears only after the first run failed: the retry succeeds.
		late := filepath.Join(dir, "late-disk0.img")
		c.e.ok("job", "create", "late", "--repository", "repo1", "--password-file", pw, "--vm", "late="+late,
			"--retries", "5", "--retry-wait", "1s")
		id := c.startJob("late")
		c.waitSession(id, func(se sessionTasks) bool { return len(se.Tasks) > 0 && se.Tasks[0].Error != "" })
		writeImage(t, late, 1<<20, map[int64][]byte{0: randomBytes(1 << 20)})
		se := c.waitSession(id, func(se sessionTasks) bool { return se.State != "running" && se.State != "queued" })
		var lr jobResult
		if err := json.Unmarshal(se.Result, &lr); err != nil {
			t.Fatal(err)
		}
		checkJobResult(t, lr, 1, 1)
		if lr.VMs[0].Retries < 1 || len(lr.VMs[0].History) == 0 || !strings.Contains(lr.VMs[0].History[0], "late-disk0.img") {
			t.Errorf("retry not recorded: %+v", lr.VMs[0])
		}
	})

	t.Run("retention keeps held points", func(t *testing.T) {
		writeImage(t, filepath.Join(dir, "h1-disk0.img"), 1<<20, map[int64][]byte{0: randomBytes(1 << 20)})
		c.e.ok("job", "create", "held", "--repository", "repo1", "--password-file", pw, "--vm", vmSpec(dir, "h1", 1),
			"--retention-last", "1")
		first := c.runJob("held").VMs[0].Point
		hold, _ := json.Marshal(map[string]any{"point": first, "holder": "ir-0000beef", "who": "test", "why": "instant recovery"})
		_ = os.MkdirAll(filepath.Join(r1, "holds", first), 0o700)
		if err := os.WriteFile(filepath.Join(r1, "holds", first, "ir-0000beef"), hold, 0o600); err != nil {
			t.Fatal(err)
		}
		r := c.runJobAny("held")
		vm := r.VMs[0]
		if vm.Status != "warning" || len(vm.Forgotten) != 0 || len(vm.Warnings) != 1 ||
			!strings.Contains(vm.Warnings[0], first+" kept") || !strings.Contains(vm.Warnings[0], "ir-0000beef") {
			t.Fatalf("retention of a held point: %+v", vm)
		}
		if out := c.e.ok("points", "--repo", r1, "--vm", "h1"); !strings.Contains(out, first) {
			t.Fatalf("the held point was forgotten:\n%s", out)
		}
		c.e.ok("holds", "release", "--repo", r1, first, "ir-0000beef")
		if r := c.runJob("held"); len(r.VMs[0].Forgotten) != 2 {
			t.Errorf("after release, retention forgot %v, want the 2 older points", r.VMs[0].Forgotten)
		}
	})

	t.Run("guest processing", func(t *testing.T) {
		sshd := sshdtest.Start(t)
		key := filepath.Join(dir, "guest-key")
		if err := os.WriteFile(key, sshd.ClientKey, 0o600); err != nil {
			t.Fatal(err)
		}
		marks := filepath.Join(dir, "guest-marks")
		pre, post, bad := filepath.Join(dir, "pre.sh"), filepath.Join(dir, "post.sh"), filepath.Join(dir, "bad.sh")
		for path, body := range map[string]string{
			pre:  "echo freezing databases\necho pre >> " + marks + "\n",
			post: "echo post >> " + marks + "\necho thawed\n",
			bad:  "echo cannot freeze >&2\nexit 3\n",
		} {
			if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		writeImage(t, filepath.Join(dir, "g1-disk0.img"), 1<<20, map[int64][]byte{0: randomBytes(1 << 20)})
		c.e.ok("job", "create", "guested", "--repository", "repo1", "--password-file", pw, "--vm", vmSpec(dir, "g1", 1),
			"--pre-freeze", pre, "--post-thaw", post, "--guest-key", key, "--guest-user", "root",
			"--guest-ssh", "g1="+sshd.Addr, "--guest-host-key", "g1="+sshd.HostKey, "--guest-timeout", "30s")
		r := c.runJob("guested")
		checkJobResult(t, r, 1, 1)
		g := r.VMs[0].Guest
		if len(g) != 2 || g[0].Script != "pre-freeze" || g[0].Via != "ssh" || !strings.Contains(g[0].Output, "freezing databases") ||
			g[1].Script != "post-thaw" || !strings.Contains(g[1].Output, "thawed") || g[0].HostKey != sshd.HostKey {
			t.Errorf("guest results: %+v", g)
		}
		if b, err := os.ReadFile(marks); err != nil || string(b) != "pre\npost\n" {
			t.Errorf("scripts ran: %q %v", b, err)
		}
		if out := c.e.ok("job", "show", "guested"); strings.Contains(out, "OPENSSH PRIVATE KEY") {
			t.Errorf("job show prints the key:\n%s", out)
		}

		// A failing pre-freeze fails the VM (post-thaw still runs) …
		c.e.ok("job", "edit", "guested", "--pre-freeze", bad)
		res := c.e.run("job", "run", "guested", "--wait", "--json")
		var fr jobResult
		if err := json.Unmarshal([]byte(res.stdout), &fr); err != nil || res.code != 1 || fr.Status != "failed" {
			t.Fatalf("failing pre-freeze: exit %d, %+v, %v\n%s", res.code, fr, err, res.stderr)
		}
		if g := fr.VMs[0].Guest; len(g) != 2 || g[0].ExitCode != 3 || !strings.Contains(g[0].Output, "cannot freeze") || g[1].Error != "" {
			t.Errorf("guest results: %+v", g)
		}
		// … or, with the warn policy, only warns.
		c.e.ok("job", "edit", "guested", "--guest-policy", "warn")
		wr := c.runJobAny("guested")
		if wr.Status != "warning" || wr.VMs[0].Point == "" || len(wr.VMs[0].Warnings) == 0 {
			t.Errorf("warn policy: %+v", wr)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		c.e.ok("job", "edit", "nightly", "--read-limit", "2MiB/s")
		id := c.startJob("nightly")
		c.waitTaskRunning(id)
		c.e.ok("session", "cancel", fmt.Sprint(id))
		se := c.session(id)
		if se.State != "cancelled" {
			t.Fatalf("session %s after cancel", se.State)
		}
		for _, tk := range se.Tasks {
			if tk.State != "cancelled" && tk.State != "success" {
				t.Errorf("task %s/%s %s after cancel", tk.VM, tk.Disk, tk.State)
			}
		}
		if r := c.e.run("session", "cancel", fmt.Sprint(id)); r.code == 0 || !strings.Contains(r.stderr, "not running") {
			t.Errorf("second cancel: exit %d %s", r.code, r.stderr)
		}
	})

	t.Run("server killed mid-job", func(t *testing.T) {
		c.e.ok("job", "edit", "nightly", "--read-limit", "2MiB/s")
		id := c.startJob("nightly")
		c.waitTaskRunning(id)
		c.kill(c.server)
		c.startServer()
		// The session runs again (TestServerRestartResumesSession) and ends.
		se := c.waitSession(id, func(se sessionTasks) bool { return se.State != "running" && se.State != "queued" })
		if se.State != "success" {
			t.Errorf("session %s after the restart", se.State)
		}
		for _, tk := range se.Tasks {
			if tk.State != "success" {
				t.Errorf("task %s/%s %s", tk.VM, tk.Disk, tk.State)
			}
		}
		c.waitAgents("proxy1", "proxy2", "repo1", "repo2")
		checkJobResult(t, c.runJob("nightly"), 4, 2)
	})
}

// waitJobSession waits for a session of job and for its end.
func waitJobSession(t *testing.T, c *cluster, job string) sessionTasks {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var ss []struct {
			ID    int64
			State string
		}
		if err := json.Unmarshal([]byte(c.e.ok("session", "list", "--job", job, "--json")), &ss); err != nil {
			t.Fatal(err)
		}
		if len(ss) > 0 {
			return c.waitSession(ss[0].ID, func(se sessionTasks) bool { return se.State != "running" && se.State != "queued" })
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("no session of %s", job)
	return sessionTasks{}
}

func checkJobResult(t *testing.T, r jobResult, vms, disks int) {
	t.Helper()
	if r.Status != "success" || len(r.VMs) != vms {
		t.Fatalf("result: %+v", r)
	}
	for _, vm := range r.VMs {
		if vm.Status != "success" || vm.Point == "" || len(vm.Disks) != disks {
			t.Fatalf("VM %s: %+v", vm.Name, vm)
		}
		for _, d := range vm.Disks {
			if d.Status != "success" || d.Proxy == "" || d.Transport != "direct" || d.BytesTotal == 0 {
				t.Fatalf("VM %s disk %d: %+v", vm.Name, d.Disk, d)
			}
		}
	}
	if r.Bottleneck == nil || r.Bottleneck.Limit == "" {
		t.Errorf("no bottleneck in %+v", r)
	}
}

func pointOf(t *testing.T, ps []apitypes.Point, vm string) string {
	t.Helper()
	for _, p := range ps {
		if p.VM == vm {
			return p.ID
		}
	}
	t.Fatalf("no point of %s in %+v", vm, ps)
	return ""
}

// TestDistributedSelection: a proxy that reaches none of the disks gets no
// task, points survive a server restart, and a job selects its VMs from an
// image directory when it runs.
func TestDistributedSelection(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := newCluster(t, "")
	dir := c.e.dir
	writeVMDisks(t, dir, 2)
	repo1 := c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 2, "--restore-root", dir)
	c.addProxy("far", 2, "--reach", "/no/such/site/") // reaches none of the disks
	c.waitAgents("repo1", "proxy1", "far")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-file", pw,
		"--vm", vmSpec(dir, "vm1", 2), "--vm", vmSpec(dir, "vm2", 2))
	res := c.runJob("nightly")
	checkJobResult(t, res, 2, 2)
	for _, vm := range res.VMs {
		for _, d := range vm.Disks {
			if d.Proxy != "proxy1" {
				t.Errorf("VM %s disk %d ran on %s, which cannot reach it", vm.Name, d.Disk, d.Proxy)
			}
		}
	}
	c.kill(c.server)
	c.startServer()
	var points []apitypes.Point
	if err := json.Unmarshal([]byte(c.e.ok("point", "list", "--json")), &points); err != nil || len(points) != 2 {
		t.Fatalf("point list after restart: %d points, %v", len(points), err)
	}
	out := filepath.Join(dir, "restored.img")
	c.e.ok("restore", pointOf(t, points, "vm2"), "--disk", "1", "--to", out)
	sameFile(t, out, filepath.Join(dir, "vm2-disk1.img"))
	if se := c.session(res.Session); se.State != "success" || len(se.Tasks) != 4 {
		t.Errorf("session after restart: %+v", se)
	}

	// VMs selected from an image directory when the session starts.
	images := filepath.Join(dir, "site-a")
	if err := os.Mkdir(images, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"web-1.img", "web-2-disk0.img", "web-2-disk1.img", "db-1.img"} {
		writeImage(t, filepath.Join(images, f), 1<<20, map[int64][]byte{0: randomBytes(64 << 10)})
	}
	c.e.ok("source", "add", "site-a", "--type", "image", "--address", images)
	c.e.ok("job", "create", "web", "--repository", "repo1", "--password-file", pw, "--vms-from", "site-a=web-*")
	sel := c.runJob("web")
	if len(sel.VMs) != 2 || sel.VMs[0].Name != "web-1" || sel.VMs[1].Name != "web-2" || len(sel.VMs[1].Disks) != 2 {
		t.Errorf("selected VMs: %+v", sel.VMs)
	}
	if sel.Status != "success" {
		t.Errorf("selected job: %+v", sel)
	}

	// Instant VM Recovery through the server: a proxy serves the point.
	nbdAddr := freeAddr(t)
	creds := filepath.Join(dir, "nbd-creds")
	out = c.e.ok("instant-recovery", "start", pointOf(t, points, "vm2"), "--nbd", nbdAddr, "--nbd-creds", creds, "--json")
	var ir struct {
		Session int64  `json:"session"`
		Proxy   string `json:"proxy"`
		Serving struct {
			Disks []struct {
				NBDURL string `json:"nbd_url"`
			} `json:"disks"`
		} `json:"serving"`
	}
	if err := json.Unmarshal([]byte(out), &ir); err != nil || len(ir.Serving.Disks) != 2 || ir.Proxy == "" {
		t.Fatalf("instant-recovery start through the server: %v\n%s", err, out)
	}
	needTools(t, "nbdcopy")
	served := filepath.Join(dir, "served.img")
	sh(t, "nbdcopy", ir.Serving.Disks[1].NBDURL+"?tls-certificates="+creds, served)
	sameFile(t, served, filepath.Join(dir, "vm2-disk1.img"))
	if out := c.e.ok("instant-recovery", "list"); !strings.Contains(out, "serving") || !strings.Contains(out, ir.Serving.Disks[1].NBDURL) {
		t.Errorf("instant-recovery list through the server:\n%s", out)
	}
	// The mount server holds the point on the agent while it serves it.
	heldDir := filepath.Join(repo1, "holds", pointOf(t, points, "vm2"))
	if hs, err := os.ReadDir(heldDir); err != nil || len(hs) != 1 {
		t.Errorf("hold on the served point: %v %v", hs, err)
	}
	c.e.ok("instant-recovery", "stop", fmt.Sprint(ir.Session))
	if se := c.session(ir.Session); se.State != "success" {
		t.Errorf("stopped instant recovery session: %+v", se)
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		conn, err := net.DialTimeout("tcp", nbdAddr, time.Second)
		if err != nil {
			break // the mount server stopped serving
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("the export still answers 15 s after stop")
		}
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		hs, _ := os.ReadDir(heldDir)
		if len(hs) == 0 {
			break // the mount server released its hold
		}
		if time.Now().After(deadline) {
			t.Fatalf("hold left 15 s after the session ended: %v", hs)
		}
	}
}

// TestDistributedQemu backs up a running QEMU VM through a proxy: the
// proxy takes the snapshot (dirty bitmap, fleecing, export), the server
// commits the point; the second run reads only the changed chunks (CBT),
// and a restore through the server gives the disk as it was.
func TestDistributedQemu(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := newCluster(t, "")
	dir := c.e.dir
	vm := startVM(t, dir)
	c.e.ok("repo", "init", "--repo", filepath.Join(dir, "repo1"), "--chunk-size", "256KiB")
	addr := freeAddr(t)
	tok := strings.TrimSpace(c.e.ok("repository", "token"))
	c.procs["repo1"] = c.proc("repository", "--name", "repo1", "--path", filepath.Join(dir, "repo1"), "--join-token", tok,
		"--listen", addr)
	c.addProxy("proxy1", 2, "--reach", "qemu://"+dir, "--restore-root", dir) // its VMs, and restores into dir
	c.waitAgents("repo1", "proxy1")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.e.ok("job", "create", "vms", "--repository", "repo1", "--password-file", pw, "--vm", "vmq=qemu://"+vm.qmpSock)

	r1 := c.runJob("vms")
	checkJobResult(t, r1, 1, 1)
	if d := r1.VMs[0].Disks[0]; d.BytesTotal != 64<<20 || d.BytesRead != 5<<20 || d.Transport != "direct" {
		t.Fatalf("full: %+v", d)
	}
	vm.assertClean()
	want1 := bytes.Clone(vm.expected)

	vm.write(16<<20, 128<<10, 0xcc)
	r2 := c.runJob("vms")
	checkJobResult(t, r2, 1, 1)
	if d := r2.VMs[0].Disks[0]; d.BytesRead != 256<<10 {
		t.Fatalf("incremental read %d bytes, want one 256 KiB chunk: %+v", d.BytesRead, d)
	}
	vm.assertClean()

	var points []apitypes.Point
	if err := json.Unmarshal([]byte(c.e.ok("point", "list", "--json")), &points); err != nil || len(points) != 2 {
		t.Fatalf("points: %v %v", points, err)
	}
	// A restore no proxy takes (outside every restore root) is refused at once.
	req := `{"point":"` + r1.VMs[0].Point + `","disk":0,"target":"/var/tmp/holdfast-unreachable.img"}`
	if code, body := c.apiDo(context.Background(), "POST", "/api/v1/restores", req); code != 400 || !strings.Contains(body, "no proxy takes restores") {
		t.Errorf("restore outside every restore root: HTTP %d %s", code, body)
	}

	out := filepath.Join(dir, "restored.img")
	c.e.ok("restore", r1.VMs[0].Point, "--disk", "0", "--to", out)
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, want1) {
		t.Fatalf("restore of the first point differs (%v)", err)
	}
}

// sameKeys checks that the first point of two JSON arrays of points
// (standalone `points --json` and the server's `point list --json`) has
// the same keys, and the same keys in its first disk.
func sameKeys(t *testing.T, a, b string) {
	t.Helper()
	keys := func(raw string) (top, disk []string) {
		var ps []map[string]json.RawMessage
		if err := json.Unmarshal([]byte(raw), &ps); err != nil || len(ps) == 0 {
			t.Fatalf("points %q: %v", raw, err)
		}
		var disks []map[string]json.RawMessage
		if err := json.Unmarshal(ps[0]["disks"], &disks); err != nil || len(disks) == 0 {
			t.Fatalf("disks of %q: %v", raw, err)
		}
		return slices.Sorted(maps.Keys(ps[0])), slices.Sorted(maps.Keys(disks[0]))
	}
	at, ad := keys(a)
	bt, bd := keys(b)
	if !slices.Equal(at, bt) || !slices.Equal(ad, bd) {
		t.Errorf("points --json keys %v, disks %v; point list --json keys %v, disks %v", at, ad, bt, bd)
	}
}
