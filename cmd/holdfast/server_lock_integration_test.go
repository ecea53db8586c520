package main

import (
	"fmt"
	"strings"
	"testing"
)

// A second server on a data directory in use exits at once with exit 6,
// naming the directory and the running server's PID; the first one goes on
// serving.
func TestServerDataDirLocked(t *testing.T) {
	c := newCluster(t, "")
	r := c.e.run("server", "--data-dir", c.data, "--listen", freeAddr(t))
	if r.code != exitLocked {
		t.Fatalf("second server: exit %d, want %d\n%s", r.code, exitLocked, r.stderr)
	}
	pid := fmt.Sprintf("pid %d", c.server.cmd.Process.Pid)
	if !strings.Contains(r.stderr, c.data) || !strings.Contains(r.stderr, pid) {
		t.Errorf("second server's message names neither %s nor %s: %q", c.data, pid, r.stderr)
	}
	if strings.Contains(r.stderr, "listening") {
		t.Errorf("second server listened: %q", r.stderr)
	}
	c.e.ok("job", "list")
	if c.server.cmd.ProcessState != nil {
		t.Fatalf("first server ended: %s", c.server.errOut)
	}
}
