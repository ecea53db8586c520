package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An agent whose saved credentials belong to another server (a reinstalled
// server: a new data directory, a new CA) exits naming its state directory
// without a join token, whether or not it was given the new server's CA;
// with a token it joins the new server and works.
func TestAgentCredentialsOfAnotherServer(t *testing.T) {
	a := newCluster(t, "")
	a.addProxy("p1", 1)
	a.waitAgents("p1")
	a.kill(a.procs["p1"])
	state := filepath.Join(a.e.dir, "state-p1")

	b := newCluster(t, "")
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"new CA given", nil},
		{"no CA given", []string{"HOLDFAST_CA="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := *b.e
			e.t = t
			e.vars = append(append([]string(nil), b.e.vars...), tc.env...)
			r := e.run("proxy", "--name", "p1", "--state-dir", state, "--heartbeat", "500ms")
			if r.code == 0 || !strings.Contains(r.stderr, state) || !strings.Contains(r.stderr, "another server") {
				t.Fatalf("proxy with another server's credentials: exit %d, want non-zero naming %s:\n%s", r.code, state, r.stderr)
			}
		})
	}

	tok := strings.TrimSpace(b.e.ok("proxy", "token"))
	b.procs["p1"] = b.proc("proxy", "--name", "p1", "--state-dir", state, "--join-token", tok, "--heartbeat", "500ms")
	b.waitAgents("p1")
	if !strings.Contains(b.procs["p1"].errOut.String(), "joining") {
		t.Errorf("the proxy did not say it joins anew: %s", b.procs["p1"].errOut)
	}
}

// A repository agent started without --state-dir keeps its state in the
// platform's directory; state left in the repository's .agent directory by
// earlier versions is still used, with a notice.
func TestRepositoryAgentLegacyState(t *testing.T) {
	c := newCluster(t, "")
	path := c.addRepository("repo1", 1, nil)
	c.waitAgents("repo1")
	c.kill(c.procs["repo1"])
	state := filepath.Join(c.e.dir, "state", "repository-repo1")
	if _, err := os.Stat(filepath.Join(state, "agent.pem")); err != nil {
		t.Fatalf("state not in the default directory: %v", err)
	}
	if err := os.Rename(state, filepath.Join(path, ".agent")); err != nil {
		t.Fatal(err)
	}
	c.procs["repo1"] = c.proc("repository", "--name", "repo1", "--path", path, "--listen", freeAddr(t))
	c.waitAgents("repo1")
	if msg := c.procs["repo1"].errOut.String(); !strings.Contains(msg, filepath.Join(path, ".agent")) ||
		!strings.Contains(msg, "earlier versions") {
		t.Errorf("no notice of the old state directory: %s", msg)
	}
}

// A running agent whose server is replaced by another (a new data
// directory, a new CA, on the same address) exits naming its state
// directory instead of failing its heartbeats forever.
func TestAgentServerReplacedWhileRunning(t *testing.T) {
	c := newCluster(t, "")
	c.addProxy("p1", 1)
	c.waitAgents("p1")
	p := c.procs["p1"]
	c.kill(c.server)
	c.data = filepath.Join(c.e.dir, "server2")
	c.startServer()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("the proxy still runs against another server: %s", p.errOut)
	}
	state := filepath.Join(c.e.dir, "state-p1")
	if code := p.cmd.ProcessState.ExitCode(); code == 0 || code == exitInterrupted ||
		!strings.Contains(p.errOut.String(), "agent state "+state) {
		t.Fatalf("proxy exit %d, want a failure naming %s: %s", code, state, p.errOut)
	}
}
