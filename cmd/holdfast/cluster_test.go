package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/testutil/pgtest"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cluster is a backup server, repository agents and proxies, each a real
// holdfast process on loopback.
type cluster struct {
	t      *testing.T
	e      *env // the administrator's client environment
	data   string
	listen string
	dsn    string
	server *agentProc
	procs  map[string]*agentProc
	// serverArgs are extra flags of the server at its next start.
	serverArgs []string
}

// proc starts a background holdfast process that may run for minutes.
func (c *cluster) proc(args ...string) *agentProc {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	c.t.Cleanup(cancel)
	p := &agentProc{cmd: c.e.command(ctx, args...), out: &lockedBuffer{}, errOut: &lockedBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errOut
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
		if c.t.Failed() {
			shown := make([]string, len(args))
			for i, a := range args {
				shown[i] = a
				if strings.HasPrefix(a, "postgres") {
					shown[i] = pgtest.Redact(a) // a --db DSN carries a password
				}
			}
			c.t.Logf("%s\nstdout: %s\nstderr: %s", strings.Join(shown, " "), p.out, p.errOut)
		}
	})
	return p
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newCluster starts a server (dsn "" for SQLite in its data directory).
func newCluster(t *testing.T, dsn string) *cluster {
	e := newEnv(t)
	c := &cluster{t: t, e: e, data: filepath.Join(e.dir, "server"), listen: freeAddr(t), dsn: dsn,
		procs: map[string]*agentProc{}}
	// The client environment goes through the server, never a local repository.
	e.vars = append(e.vars, "HOLDFAST_REPOSITORY=", "HOLDFAST_SERVER=https://"+c.listen,
		"HOLDFAST_CA="+filepath.Join(c.data, "ca.pem"))
	c.startServer()
	tok, err := os.ReadFile(filepath.Join(c.data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "HOLDFAST_TOKEN="+strings.TrimSpace(string(tok)))
	return c
}

func (c *cluster) startServer() {
	c.t.Helper()
	args := append([]string{"server", "--data-dir", c.data, "--listen", c.listen, "--agent-timeout", "3s"}, c.serverArgs...)
	if c.dsn != "" {
		args = append(args, "--db", c.dsn)
	}
	c.server = c.proc(args...)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(c.server.errOut.String(), "listening on") {
		if time.Now().After(deadline) || c.server.cmd.ProcessState != nil {
			c.t.Fatalf("server did not start: %s", c.server.errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// addRepository creates a repository and runs its agent (extra: flags of
// both, e.g. --password-file); via, if set, puts a relay between proxies and the agent (it
// gets the agent's address and returns the one to advertise).
func (c *cluster) addRepository(name string, slots int, via func(addr string) string, extra ...string) string {
	c.t.Helper()
	path := filepath.Join(c.e.dir, name)
	c.e.ok(append([]string{"repo", "init", "--repo", path}, extra...)...)
	addr := freeAddr(c.t)
	adv := addr
	if via != nil {
		adv = via(addr)
	}
	tok := strings.TrimSpace(c.e.ok("repository", "token"))
	c.procs[name] = c.proc(append([]string{"repository", "--name", name, "--path", path, "--join-token", tok,
		"--listen", addr, "--advertise", adv, "--slots", strconv.Itoa(slots)}, extra...)...)
	return path
}

// addProxy runs a proxy agent (joining on first start).
func (c *cluster) addProxy(name string, slots int, extra ...string) {
	c.t.Helper()
	args := append([]string{"proxy", "--name", name, "--state-dir", filepath.Join(c.e.dir, "state-"+name),
		"--slots", strconv.Itoa(slots), "--workers", "2", "--heartbeat", "500ms"}, extra...)
	if _, err := os.Stat(filepath.Join(c.e.dir, "state-"+name)); err != nil {
		args = append(args, "--join-token", strings.TrimSpace(c.e.ok("proxy", "token")))
	}
	c.procs[name] = c.proc(args...)
}

// waitAgents waits until every named agent has heartbeated since the call
// (an event: repositories heartbeat every 10 s, proxies every 500 ms here),
// however long the polling takes on a loaded machine.
func (c *cluster) waitAgents(names ...string) {
	c.t.Helper()
	since := time.Now().Truncate(time.Microsecond) // the server stores µs
	deadline := time.Now().Add(2 * time.Minute)
	for {
		seen := map[string]bool{}
		for _, role := range []string{"proxy", "repository"} {
			var agents []apitypes.Agent
			if err := json.Unmarshal([]byte(c.e.ok(role, "list", "--json")), &agents); err != nil {
				c.t.Fatal(err)
			}
			for _, a := range agents {
				if a.LastHeartbeat != nil && !a.LastHeartbeat.Before(since) {
					seen[a.Name] = true
				}
			}
		}
		missing := 0
		for _, n := range names {
			if !seen[n] {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("agents %v did not all heartbeat (seen %v)", names, seen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kill stops a process at once (SIGKILL).
func (c *cluster) kill(p *agentProc) {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// jobResult is the result document of a session.
type jobResult struct {
	Status  string `json:"status"`
	Session int64  `json:"session"`
	Error   string `json:"error"`
	VMs     []struct {
		Name      string   `json:"name"`
		Status    string   `json:"status"`
		Point     string   `json:"point"`
		Errors    []string `json:"errors"`
		Forgotten []string `json:"forgotten"`
		Retries   int      `json:"retries"`
		History   []string `json:"history"`
		Warnings  []string `json:"warnings"`
		Guest     []struct {
			Script   string `json:"script"`
			Via      string `json:"via"`
			ExitCode int    `json:"exit_code"`
			Output   string `json:"output"`
			HostKey  string `json:"host_key"`
			Error    string `json:"error"`
		} `json:"guest"`
		Disks []struct {
			Disk             int     `json:"disk"`
			Status           string  `json:"status"`
			Proxy            string  `json:"proxy"`
			Repository       string  `json:"repository"`
			Transport        string  `json:"transport"`
			Attempts         int     `json:"attempts"`
			BytesTotal       int64   `json:"bytes_total"`
			BytesRead        int64   `json:"bytes_read"`
			BytesTransferred int64   `json:"bytes_transferred"`
			BytesWritten     int64   `json:"bytes_written"`
			Duration         float64 `json:"duration_seconds"`
			Error            string  `json:"error"`
		} `json:"disks"`
	} `json:"vms"`
	Bottleneck *struct {
		Limit string `json:"limit"`
	} `json:"bottleneck"`
}

func (c *cluster) runJob(name string) jobResult {
	c.t.Helper()
	var res jobResult
	out := c.e.ok("job", "run", name, "--wait", "--json")
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		c.t.Fatalf("job run %s: %v\n%s", name, err, out)
	}
	return res
}

// runJobAny runs a job and returns its result whatever its status.
func (c *cluster) runJobAny(name string) jobResult {
	c.t.Helper()
	r := c.e.run("job", "run", name, "--wait", "--json")
	var res jobResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		c.t.Fatalf("job run %s: exit %d %v\n%s%s", name, r.code, err, r.stdout, r.stderr)
	}
	return res
}

// sessionTasks is `session show --json`.
type sessionTasks struct {
	ID     int64           `json:"id"`
	State  string          `json:"state"`
	Result json.RawMessage `json:"result"`
	Tasks  []struct {
		VM         string     `json:"vm"`
		Disk       string     `json:"disk"`
		Proxy      string     `json:"proxy"`
		Repository string     `json:"repository"`
		State      string     `json:"state"`
		Attempt    int        `json:"attempt"`
		Started    *time.Time `json:"started"`
		Ended      *time.Time `json:"ended"`
		Error      string     `json:"error"`
	} `json:"tasks"`
}

func (c *cluster) session(id int64) sessionTasks {
	c.t.Helper()
	var se sessionTasks
	if err := json.Unmarshal([]byte(c.e.ok("session", "show", strconv.FormatInt(id, 10), "--json")), &se); err != nil {
		c.t.Fatal(err)
	}
	return se
}

// waitSession polls until the session is in one of states.
func (c *cluster) waitSession(id int64, until func(sessionTasks) bool) sessionTasks {
	c.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		se := c.session(id)
		if until(se) {
			return se
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("session %d: %+v", id, se)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitTaskRunning waits until a task of the session runs.
func (c *cluster) waitTaskRunning(id int64) {
	c.t.Helper()
	c.waitSession(id, func(se sessionTasks) bool {
		for _, tk := range se.Tasks {
			if tk.State == "running" {
				return true
			}
		}
		return false
	})
}

// startJob queues a run and returns its session ID.
func (c *cluster) startJob(name string) int64 {
	c.t.Helper()
	var se struct{ ID int64 }
	if err := json.Unmarshal([]byte(c.e.ok("job", "run", name, "--json")), &se); err != nil || se.ID == 0 {
		c.t.Fatalf("job run %s: %v", name, err)
	}
	return se.ID
}

// relay forwards TCP connections to a target and cuts each connection
// after cutEvery bytes from the client; it counts the bytes it forwarded.
type relay struct {
	ln       net.Listener
	target   string
	cutEvery int64
	sent     atomic.Int64 // client → target
	cuts     atomic.Int64
	wg       sync.WaitGroup
}

func newRelay(t *testing.T, target string, cutEvery int64) *relay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{ln: ln, target: target, cutEvery: cutEvery}
	r.wg.Add(1)
	go r.serve()
	t.Cleanup(func() { ln.Close(); r.wg.Wait() })
	return r
}

func (r *relay) serve() {
	defer r.wg.Done()
	for {
		conn, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() { defer r.wg.Done(); r.pipe(conn) }()
	}
}

func (r *relay) pipe(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("tcp", r.target)
	if err != nil {
		return
	}
	defer server.Close()
	go func() { _, _ = io.Copy(client, server); client.Close() }()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := client.Read(buf)
		if k > 0 {
			if _, werr := server.Write(buf[:k]); werr != nil {
				return
			}
			r.sent.Add(int64(k))
			if n += int64(k); r.cutEvery > 0 && n >= r.cutEvery {
				r.cuts.Add(1)
				return // cut: both ends see the connection drop
			}
		}
		if err != nil {
			return
		}
	}
}

// checkSlots checks from the recorded task times that no proxy and no
// repository ever ran more tasks at once than its slots.
func checkSlots(t *testing.T, sessions []sessionTasks, slots map[string]int) {
	t.Helper()
	type ev struct {
		at    time.Time
		delta int
		who   string
	}
	var evs []ev
	for _, se := range sessions {
		for _, tk := range se.Tasks {
			if tk.Started == nil || tk.Ended == nil || tk.Attempt != 1 {
				continue // a requeued task's times span two attempts
			}
			for _, who := range []string{tk.Proxy, tk.Repository} {
				evs = append(evs, ev{*tk.Started, 1, who}, ev{*tk.Ended, -1, who})
			}
		}
	}
	if len(evs) == 0 {
		t.Fatal("no task times recorded")
	}
	// Ends before starts at the same instant: an ended task's slot is free.
	sortEvents := func(a, b ev) bool {
		if !a.at.Equal(b.at) {
			return a.at.Before(b.at)
		}
		return a.delta < b.delta
	}
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && sortEvents(evs[j], evs[j-1]); j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
	used, peak := map[string]int{}, map[string]int{}
	for _, e := range evs {
		used[e.who] += e.delta
		peak[e.who] = max(peak[e.who], used[e.who])
	}
	for who, n := range peak {
		if lim, ok := slots[who]; ok && n > lim {
			t.Errorf("%s ran %d tasks at once, it has %d slots", who, n, lim)
		}
	}
	t.Logf("peak concurrent tasks: %v (slots %v)", peak, slots)
}

func vmSpec(dir, vm string, disks int) string {
	var paths []string
	for d := range disks {
		paths = append(paths, filepath.Join(dir, fmt.Sprintf("%s-disk%d.img", vm, d)))
	}
	return vm + "=" + strings.Join(paths, ",")
}

// apiPost sends an authenticated POST to the server's API and returns the
// body of a 2xx answer.
func (c *cluster) apiPost(t *testing.T, path, body string) string {
	t.Helper()
	code, b := c.apiDo(context.Background(), "POST", path, body)
	if code/100 != 2 {
		t.Fatalf("POST %s: HTTP %d %s", path, code, b)
	}
	return b
}

// apiDo sends an authenticated request to the server's API as the
// administrator and returns the status and body.
func (c *cluster) apiDo(ctx context.Context, method, path, body string) (int, string) {
	admin, err := os.ReadFile(filepath.Join(c.data, "admin.token"))
	if err != nil {
		return 0, err.Error()
	}
	pem, err := os.ReadFile(filepath.Join(c.data, "ca.pem"))
	if err != nil {
		return 0, err.Error()
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequestWithContext(ctx, method, "https://"+c.listen+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(admin)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
