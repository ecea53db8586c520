package main

import (
	"bufio"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeGuestAgent answers the QEMU guest agent protocol on a unix socket
// (there is no guest OS in the test VM to run a real one) and records the
// commands it receives. hang makes guest-fsfreeze-freeze never answer.
type fakeGuestAgent struct {
	mu   sync.Mutex
	cmds []string
	hang bool
}

func startFakeGuestAgent(t *testing.T, dir string, hang bool) (*fakeGuestAgent, string) {
	t.Helper()
	path := filepath.Join(dir, "qga.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	fa := &fakeGuestAgent{hang: hang}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go fa.serve(c)
		}
	}()
	return fa, path
}

func (fa *fakeGuestAgent) serve(c net.Conn) {
	defer c.Close()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		line := sc.Text()
		for strings.HasPrefix(line, "\xff") { // the agent's sync byte
			line = line[1:]
		}
		var req struct {
			Execute   string         `json:"execute"`
			Arguments map[string]any `json:"arguments"`
		}
		if json.Unmarshal([]byte(line), &req) != nil {
			continue
		}
		fa.mu.Lock()
		fa.cmds = append(fa.cmds, req.Execute)
		fa.mu.Unlock()
		var reply string
		switch req.Execute {
		case "guest-sync-delimited":
			id, _ := json.Marshal(req.Arguments["id"])
			reply = "\xff{\"return\": " + string(id) + "}"
		case "guest-fsfreeze-status":
			reply = `{"return": "thawed"}`
		case "guest-fsfreeze-freeze":
			if fa.hang {
				continue
			}
			reply = `{"return": 2}`
		case "guest-fsfreeze-thaw":
			reply = `{"return": 2}`
		default:
			reply = `{"error": {"class": "CommandNotFound", "desc": "unknown"}}`
		}
		_, _ = c.Write([]byte(reply + "\n"))
	}
}

func (fa *fakeGuestAgent) commands() string {
	fa.mu.Lock()
	defer fa.mu.Unlock()
	return strings.Join(fa.cmds, " ")
}

func TestQemuGuestQuiescing(t *testing.T) {
	e := newEnv(t)
	e.init("--chunk-size", "256KiB")
	vm := startVM(t, e.dir)
	src := "qemu://" + vm.qmpSock

	fa, sock := startFakeGuestAgent(t, t.TempDir(), false)
	b := e.backupJSON("vmq", "--guest-agent", sock, src)
	if b.Notes["guest_quiesce"] != "frozen (2 file systems)" {
		t.Fatalf("guest result %q", b.Notes["guest_quiesce"])
	}
	cmds := fa.commands()
	if f, th := strings.Index(cmds, "guest-fsfreeze-freeze"), strings.Index(cmds, "guest-fsfreeze-thaw"); f < 0 || th < f {
		t.Fatalf("agent saw %q: want a freeze followed by a thaw", cmds)
	}

	// An agent that never answers the freeze: the backup goes on crash
	// consistent, says why, and still sends a thaw.
	fa, sock = startFakeGuestAgent(t, t.TempDir(), true)
	b = e.backupJSON("vmq", "--guest-agent", sock, "--guest-timeout", "1s", src)
	if g := b.Notes["guest_quiesce"]; !strings.HasPrefix(g, "not frozen") {
		t.Fatalf("hung agent: guest result %q", g)
	}
	if !strings.Contains(fa.commands(), "guest-fsfreeze-thaw") {
		t.Fatalf("no thaw after a failed freeze: %q", fa.commands())
	}
	// No agent listening at all.
	b = e.backupJSON("vmq", "--guest-agent", filepath.Join(e.dir, "none.sock"), "--guest-timeout", "1s", src)
	if g := b.Notes["guest_quiesce"]; !strings.Contains(g, "not reachable") {
		t.Fatalf("missing agent: %q", g)
	}
	vm.assertClean()
	e.restoreEquals(b.Point, vm.expected)
	if out := e.ok("backup", "--name", "vmq", "--guest-agent", sock, "--guest-timeout", "1s", src); !strings.Contains(out, "guest quiesce: not frozen") {
		t.Fatalf("human output lacks the guest result: %s", out)
	}
}
