package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// secret appears in every test script; no error may contain it.
const secret = "s3cr3t-token-do-not-log"

func TestRunSSH(t *testing.T) {
	d := startSSHD(t)
	fa, agentSock := startFakeAgent(t)
	otherKey, _ := newKeyPair(t)

	tests := []struct {
		name    string
		target  Target
		body    string
		timeout time.Duration
		check   func(t *testing.T, res Result, err error)
	}{{
		name:   "success, host key reported",
		target: Target{SSH: d.target("")},
		body:   "echo out; echo err >&2; cat; test \"$(umask)\" = 0077 && echo private",
		check: func(t *testing.T, res Result, err error) {
			mustOK(t, res, err, ViaSSH)
			for _, w := range []string{"out\n", "err\n", "private\n"} {
				if !strings.Contains(res.Output, w) {
					t.Errorf("output %q lacks %q", res.Output, w)
				}
			}
			if res.HostKey != d.hostKeyFP {
				t.Errorf("HostKey %q, want %q", res.HostKey, d.hostKeyFP)
			}
		},
	}, {
		name:   "pinned host key",
		target: Target{SSH: d.target(d.hostKeyFP), AgentSocket: agentSock},
		body:   "echo pinned",
		check: func(t *testing.T, res Result, err error) {
			mustOK(t, res, err, ViaSSH)
			if res.Output != "pinned\n" || res.Fallback != "" {
				t.Errorf("output %q, fallback %q", res.Output, res.Fallback)
			}
		},
	}, {
		name:   "exit 3",
		target: Target{SSH: d.target(d.hostKeyFP)},
		body:   "echo failing; exit 3",
		check: func(t *testing.T, res Result, err error) {
			var se *ScriptError
			if !errors.As(err, &se) || se.ExitCode != 3 || se.Via != ViaSSH || se.Output != "failing\n" {
				t.Fatalf("err %v (%#v), want a ScriptError with exit 3 and the output", err, se)
			}
			if res.ExitCode != 3 || res.Via != ViaSSH {
				t.Errorf("result %+v", res)
			}
		},
	}, {
		name:   "killed by a signal",
		target: Target{SSH: d.target("")},
		body:   "kill -KILL $$",
		check: func(t *testing.T, res Result, err error) {
			var se *ScriptError
			if !errors.As(err, &se) || se.ExitCode == 0 {
				t.Fatalf("err %v, want a ScriptError", err)
			}
		},
	}, {
		name:   "output keeps the tail",
		target: Target{SSH: d.target("")},
		body:   "i=0; while [ $i -lt 3000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
		check: func(t *testing.T, res Result, err error) {
			mustOK(t, res, err, ViaSSH)
			if len(res.Output) > MaxOutput || !strings.HasPrefix(res.Output, "[holdfast: ") ||
				!strings.HasSuffix(res.Output, "line-2999-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n") {
				t.Errorf("output of %d bytes: %.80q … %q", len(res.Output), res.Output, res.Output[max(0, len(res.Output)-60):])
			}
		},
	}, {
		name:    "timeout kills the script",
		target:  Target{SSH: d.target(d.hostKeyFP)},
		body:    "echo started; sleep 30",
		timeout: scriptTimeout,
		check: func(t *testing.T, res Result, err error) {
			t.Logf("timeout error: %v", err)
			if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "timed out") {
				t.Fatalf("err %v, want ErrTimeout", err)
			}
			if res.Duration >= 30*time.Second {
				t.Errorf("took %s: the script ran to its end", res.Duration)
			}
			if res.Output != "started\n" {
				t.Errorf("output %q", res.Output)
			}
		},
	}, {
		name:   "wrong host key, no fallback",
		target: Target{SSH: d.target("SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), AgentSocket: agentSock},
		body:   "echo never",
		check: func(t *testing.T, res Result, err error) {
			var hk *HostKeyError
			if !errors.Is(err, ErrHostKeyMismatch) || !errors.As(err, &hk) || hk.Got != d.hostKeyFP {
				t.Fatalf("err %v, want a host key mismatch", err)
			}
			if res.Via != "" || res.HostKey != d.hostKeyFP {
				t.Errorf("result %+v", res)
			}
		},
	}, {
		name:   "authentication failure, no fallback",
		target: Target{SSH: &SSHTarget{Addr: d.addr, User: "root", Key: otherKey}, AgentSocket: agentSock},
		body:   "echo never",
		check: func(t *testing.T, res Result, err error) {
			if err == nil || !strings.Contains(err.Error(), "unable to authenticate") || res.Via != "" {
				t.Fatalf("err %v, result %+v: want an authentication error", err, res)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sleepers := processes("sleep 30")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			res, err := Run(ctx, tc.target, Script{Name: "pre-freeze", Body: "# " + secret + "\n" + tc.body}, tc.timeout)
			tc.check(t, res, err)
			checkNoSecrets(t, err, d.clientKey, otherKey)
			assertClean(t, sleepers)
		})
	}
	if cmds := fa.commands(); cmds != "" {
		t.Errorf("the guest agent was used: %s", cmds)
	}
}

func mustOK(t *testing.T, res Result, err error, via string) {
	t.Helper()
	if err != nil {
		t.Fatalf("Run: %v (output %q)", err, res.Output)
	}
	if res.Via != via || res.ExitCode != 0 {
		t.Fatalf("result %+v, want via %s, exit 0", res, via)
	}
}

// checkNoSecrets fails if err reveals the script body or a private key.
func checkNoSecrets(t *testing.T, err error, keys ...[]byte) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if strings.Contains(msg, secret) {
		t.Errorf("error reveals the script: %s", msg)
	}
	for _, k := range keys {
		for _, line := range strings.Split(string(k), "\n") {
			if len(line) > 20 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line) {
				t.Errorf("error reveals a private key: %s", msg)
			}
		}
	}
}

// scriptTimeout is the timeout of the test scripts that sleep 30 s: long
// enough for a loaded machine to start the script (the output before the
// kill is checked), far from the 30 s a script left running would take.
const scriptTimeout = 5 * time.Second

// assertClean checks that no script file is left in /tmp and that no
// "sleep 30" other than those in before still runs, waiting up to 20 s for
// them to go (a script left running would outlive that).
func assertClean(t *testing.T, before map[int]bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		files, _ := filepath.Glob("/tmp/holdfast-*.sh*")
		var left []int
		for pid := range processes("sleep 30") {
			if !before[pid] {
				left = append(left, pid)
			}
		}
		if len(files) == 0 && len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("left behind: files %v, sleep processes %v", files, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processes returns the pids whose command line is cmdline.
func processes(cmdline string) map[int]bool {
	pids := map[int]bool{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil || strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ") != cmdline {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(filepath.Base(filepath.Dir(p)), &pid); err == nil {
			pids[pid] = true
		}
	}
	return pids
}
