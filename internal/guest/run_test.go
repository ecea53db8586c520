package guest

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunFallback covers the paths without a reachable sshd: the guest
// agent (a fake that runs the commands on the test machine) and the errors
// when nothing answers.
func TestRunFallback(t *testing.T) {
	fa, agentSock := startFakeAgent(t)
	key, _ := newKeyPair(t)
	refused := func() *SSHTarget { return &SSHTarget{Addr: closedAddr(t), User: "root", Key: key} }
	missingSock := filepath.Join(t.TempDir(), "none.sock")
	hangUp := hangUpAddr(t)

	tests := []struct {
		name      string
		target    Target
		body      string
		timeout   time.Duration
		agentUsed bool
		check     func(t *testing.T, res Result, err error)
	}{{
		name:      "ssh refused, agent runs the script",
		target:    Target{SSH: refused(), AgentSocket: agentSock},
		body:      "echo via-agent; echo warn >&2",
		agentUsed: true,
		check: func(t *testing.T, res Result, err error) {
			mustOK(t, res, err, ViaAgent)
			if res.Output != "via-agent\nwarn\n" {
				t.Errorf("output %q", res.Output)
			}
			if !strings.Contains(res.Fallback, "connection refused") {
				t.Errorf("Fallback %q does not say why", res.Fallback)
			}
		},
	}, {
		name:      "ssh port closes at once, agent runs the script",
		target:    Target{SSH: &SSHTarget{Addr: hangUp, User: "root", Key: key}, AgentSocket: agentSock},
		body:      "echo via-agent",
		agentUsed: true,
		check: func(t *testing.T, res Result, err error) {
			mustOK(t, res, err, ViaAgent)
			if res.Output != "via-agent\n" || !strings.Contains(res.Fallback, "ssh "+hangUp) || res.HostKey != "" {
				t.Errorf("result %+v", res)
			}
		},
	}, {
		name:      "no ssh target, agent runs the script",
		target:    Target{AgentSocket: agentSock},
		body:      "echo only-agent",
		agentUsed: true,
		check: func(t *testing.T, res Result, err error) {
			mustOK(t, res, err, ViaAgent)
			if res.Output != "only-agent\n" || res.Fallback != "no SSH target configured" {
				t.Errorf("output %q, fallback %q", res.Output, res.Fallback)
			}
		},
	}, {
		name:      "agent, exit 3",
		target:    Target{SSH: refused(), AgentSocket: agentSock},
		body:      "echo bad >&2; exit 3",
		agentUsed: true,
		check: func(t *testing.T, res Result, err error) {
			var se *ScriptError
			if !errors.As(err, &se) || se.ExitCode != 3 || se.Via != ViaAgent || se.Output != "bad\n" {
				t.Fatalf("err %v, want a ScriptError with exit 3", err)
			}
			if res.Via != ViaAgent || res.ExitCode != 3 {
				t.Errorf("result %+v", res)
			}
		},
	}, {
		name:      "agent, timeout kills the script",
		target:    Target{AgentSocket: agentSock},
		body:      "sleep 30",
		timeout:   scriptTimeout,
		agentUsed: true,
		check: func(t *testing.T, res Result, err error) {
			if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "timed out") {
				t.Fatalf("err %v, want ErrTimeout", err)
			}
			if res.Duration >= 30*time.Second {
				t.Errorf("took %s: the script ran to its end", res.Duration)
			}
		},
	}, {
		name:   "ssh refused, no agent",
		target: Target{SSH: refused()},
		check: func(t *testing.T, res Result, err error) {
			if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "connection refused") ||
				!strings.Contains(err.Error(), "no guest agent") {
				t.Fatalf("err %v, want ErrUnreachable naming ssh and the guest agent", err)
			}
		},
	}, {
		name:   "ssh refused, agent socket missing",
		target: Target{SSH: refused(), AgentSocket: missingSock},
		check: func(t *testing.T, res Result, err error) {
			if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "connection refused") ||
				!strings.Contains(err.Error(), missingSock) {
				t.Fatalf("err %v, want ErrUnreachable naming ssh and the guest agent", err)
			}
			if !strings.Contains(res.Fallback, "connection refused") {
				t.Errorf("Fallback %q", res.Fallback)
			}
		},
	}, {
		name:   "nothing configured",
		target: Target{},
		check: func(t *testing.T, res Result, err error) {
			if !errors.Is(err, ErrNoPath) {
				t.Fatalf("err %v, want ErrNoPath", err)
			}
		},
	}, {
		name:   "unusable key is no reason to fall back",
		target: Target{SSH: &SSHTarget{Addr: closedAddr(t), User: "root", Key: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\n" + secret + "\n-----END OPENSSH PRIVATE KEY-----\n")}, AgentSocket: agentSock},
		check: func(t *testing.T, res Result, err error) {
			if err == nil || !strings.Contains(err.Error(), "private key") || res.Via != "" {
				t.Fatalf("err %v, result %+v: want a key error", err, res)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sleepers := processes("sleep 30")
			before := fa.commands()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := Run(ctx, tc.target, Script{Name: "post-thaw", Body: "# " + secret + "\n" + tc.body}, tc.timeout)
			tc.check(t, res, err)
			checkNoSecrets(t, err, key)
			if used := fa.commands() != before; used != tc.agentUsed {
				t.Errorf("guest agent used: %v, want %v (commands %q)", used, tc.agentUsed, fa.commands())
			}
			assertClean(t, sleepers)
		})
	}
}

func TestRunCancelled(t *testing.T) {
	_, agentSock := startFakeAgent(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	sleepers := processes("sleep 30")
	_, err := Run(ctx, Target{AgentSocket: agentSock}, Script{Name: "pre-freeze", Body: "sleep 30"}, time.Minute)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	assertClean(t, sleepers)
}

// hangUpAddr returns the address of a TCP listener that closes every
// connection at once, before any SSH greeting.
func hangUpAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l.Addr().String()
}
