package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMonitoring runs a successful and a failed job on a real cluster and
// scrapes the server's /metrics over HTTPS with a viewer token created by
// `holdfast token create`: the session, task, byte, job, VM, agent, slot
// and repository series carry the values of what ran; the proxies'
// tasks/next long polls are counted but kept out of the latency histogram.
// The server logs the failed session's reason; the agents' stderr lines
// carry a time and a level, as text or (--log-format json) JSON.
func TestMonitoring(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	c := newCluster(t, "")
	dir := c.e.dir
	writeVMDisks(t, dir, 1)
	c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 2)
	c.addProxy("proxy2", 1, "--log-format", "json")
	c.waitAgents("repo1", "proxy1", "proxy2")
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	c.e.ok("job", "create", "nightly", "--repository", "repo1", "--password-file", pw, "--vm", vmSpec(dir, "vm1", 2))
	c.e.ok("job", "create", "broken", "--repository", "repo1", "--password-file", pw,
		"--vm", "gone="+filepath.Join(dir, "gone-disk0.img"))
	res := c.runJob("nightly")
	checkJobResult(t, res, 1, 2)
	if bad := c.runJobAny("broken"); bad.Status != "failed" {
		t.Fatalf("broken job: %+v", bad)
	}

	viewer := strings.TrimSpace(c.e.ok("token", "create", "prometheus", "--role", "viewer"))
	if code, _ := scrapeMetrics(t, c, ""); code != http.StatusUnauthorized {
		t.Fatalf("anonymous scrape: HTTP %d, want 401", code)
	}
	// The cluster's --agent-timeout (3 s) is shorter than a repository
	// agent's heartbeat interval (10 s): scrape until a scrape falls
	// within 3 s of both agents' heartbeats, as one will.
	var m map[string]float64
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		code, body := scrapeMetrics(t, c, viewer)
		if code != http.StatusOK {
			t.Fatalf("scrape: HTTP %d %s", code, body)
		}
		m = parseExposition(t, body)
		if m[`holdfast_agent_up{agent="proxy1",role="proxy"}`] == 1 && m[`holdfast_agent_up{agent="repo1",role="repository"}`] == 1 ||
			time.Now().After(deadline) {
			break
		}
	}
	var read, sent, stored int64
	for _, d := range res.VMs[0].Disks {
		read, sent, stored = read+d.BytesRead, sent+d.BytesTransferred, stored+d.BytesWritten
	}
	for series, want := range map[string]float64{
		`holdfast_session_duration_seconds_count{kind="backup",result="success"}`: 1,
		`holdfast_session_duration_seconds_count{kind="backup",result="failed"}`:  1,
		`holdfast_task_duration_seconds_count{result="success"}`:                  2,
		`holdfast_task_bytes_total{repository="repo1",stage="read"}`:              float64(read),
		`holdfast_task_bytes_total{repository="repo1",stage="new"}`:               float64(sent),
		`holdfast_task_bytes_total{repository="repo1",stage="stored"}`:            float64(stored),
		`holdfast_job_last_result{job="nightly",result="success"}`:                1,
		`holdfast_job_last_result{job="broken",result="failed"}`:                  1,
		`holdfast_vm_last_result{job="nightly",result="success",vm="vm1"}`:        1,
		`holdfast_vm_last_result{job="broken",result="failed",vm="gone"}`:         1,
		`holdfast_agent_up{agent="proxy1",role="proxy"}`:                          1,
		`holdfast_agent_up{agent="repo1",role="repository"}`:                      1,
		`holdfast_agent_slots{agent="proxy1",role="proxy"}`:                       2,
		`holdfast_agent_slots{agent="repo1",role="repository"}`:                   2,
		`holdfast_agent_slots_busy{agent="proxy1",role="proxy"}`:                  0,
	} {
		got, ok := m[series]
		if want == 0 && !ok {
			continue
		}
		if !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	if read == 0 || stored == 0 {
		t.Errorf("the job read %d and stored %d bytes", read, stored)
	}
	now := float64(time.Now().Unix()) + 1
	for _, series := range []string{`holdfast_job_last_success_timestamp_seconds{job="nightly"}`,
		`holdfast_job_last_end_timestamp_seconds{job="broken"}`, `holdfast_vm_last_success_timestamp_seconds{vm="vm1"}`,
		`holdfast_agent_last_heartbeat_timestamp_seconds{agent="proxy1",role="proxy"}`} {
		if v := m[series]; v < float64(before.Unix())-1 || v > now {
			t.Errorf("%s = %v, want between %d and %v", series, v, before.Unix(), now)
		}
	}
	for _, series := range []string{`holdfast_job_last_success_timestamp_seconds{job="broken"}`,
		`holdfast_task_duration_seconds_count{result="warning"}`} {
		if v, ok := m[series]; ok {
			t.Errorf("%s = %v, want no series", series, v)
		}
	}
	for _, series := range []string{`holdfast_repository_filesystem_size_bytes{repository="repo1"}`,
		`holdfast_repository_filesystem_free_bytes{repository="repo1"}`, "go_goroutines", "process_resident_memory_bytes",
		`holdfast_api_request_duration_seconds_count{method="POST",route="/api/v1/jobs/{name}/run"}`} {
		if m[series] <= 0 {
			t.Errorf("%s = %v, want > 0", series, m[series])
		}
	}
	polls := 0.0
	for series, v := range m {
		if strings.Contains(series, `route="/api/v1/agents/tasks/next"`) {
			if !strings.HasPrefix(series, "holdfast_api_requests_total{") {
				t.Errorf("long poll in %s", series)
			}
			polls += v
		}
	}
	if polls == 0 {
		t.Error("no tasks/next requests counted")
	}

	// The server says why the session failed; the agents' lines carry a
	// time and a level.
	checkFailedSessionLogged(t, c.server.errOut.String())
	checkLogLines(t, "proxy1", c.procs["proxy1"].errOut.String(), false)
	checkLogLines(t, "proxy2", c.procs["proxy2"].errOut.String(), true)
	checkLogLines(t, "repo1", c.procs["repo1"].errOut.String(), false)
}

// scrapeMetrics GETs /metrics with token ("" for none).
func scrapeMetrics(t *testing.T, c *cluster, token string) (int, string) {
	t.Helper()
	return httpsGet(t, filepath.Join(c.data, "ca.pem"), "https://"+c.listen+"/metrics", token)
}

// parseExposition reads the Prometheus text format into series → value.
func parseExposition(t *testing.T, body string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	return m
}

func checkFailedSessionLogged(t *testing.T, log string) {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `msg="session ended"`) && strings.Contains(line, "job=broken") {
			if !strings.Contains(line, "level=WARN") || !strings.Contains(line, "status=failed") ||
				!strings.Contains(line, "reason=") || !strings.Contains(line, "gone") {
				t.Errorf("failed session logged as %q, want WARN with its reason", line)
			}
			return
		}
	}
	t.Errorf("the server did not log the failed session:\n%s", log)
}

// checkLogLines checks that every line an agent wrote to stderr is a log
// line with a time and a level (text key=value, or JSON).
func checkLogLines(t *testing.T, who, out string, asJSON bool) {
	t.Helper()
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		lines++
		if asJSON {
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil || m["time"] == nil || m["level"] == nil {
				t.Errorf("%s: %q is not a JSON log line with time and level (%v)", who, line, err)
			}
			continue
		}
		if !strings.HasPrefix(line, "time=") || !strings.Contains(line, " level=") {
			t.Errorf("%s: %q has no time and level", who, line)
		}
	}
	if lines == 0 {
		t.Errorf("%s logged nothing at the default level", who)
	}
}
