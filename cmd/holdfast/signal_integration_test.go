package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// exitBound is how long an interrupted command may take to exit before the
// test calls it hung. The requirement is 2 s; the bound is generous so a
// loaded machine does not fail the test, and the time taken is logged.
const exitBound = 20 * time.Second

// interruptCase is one long command and the signal that stops it.
type interruptCase struct {
	name string
	args []string
	show string         // what its progress bar shows on a terminal
	sig  syscall.Signal // SIGINT is typed as Ctrl-C on a terminal
}

// interruptCases are backup, restore and verify, paced (--read-limit,
// --repo-read-limit) so that each runs for seconds and the signal lands
// while its progress is live, on any machine.
func interruptCases(img, point, out string) []interruptCase {
	restore := []string{"--repo-read-limit", "8MiB", "restore", point, "--to", filepath.Join(out, "r.img")}
	return []interruptCase{
		{"backup/interrupt", []string{"backup", "--name", "vm1", "--read-limit", "8MiB", img}, "backup vm1", syscall.SIGINT},
		{"backup/terminate", []string{"backup", "--name", "vm1", "--read-limit", "8MiB", img}, "backup vm1", syscall.SIGTERM},
		{"restore/interrupt", restore, "restore " + point, syscall.SIGINT},
		{"restore/terminate", restore, "restore " + point, syscall.SIGTERM},
		{"verify/interrupt", []string{"--repo-read-limit", "8MiB", "verify", "--read-data"}, "verify", syscall.SIGINT},
		{"verify/terminate", []string{"--repo-read-limit", "8MiB", "verify", "--read-data"}, "verify", syscall.SIGTERM},
	}
}

// signalEnv is a repository with one 64 MiB point of random data, the
// image it came from and an empty restore directory.
func signalEnv(t *testing.T) (e *env, img, point, out string) {
	e = newEnv(t)
	e.init()
	img = filepath.Join(e.dir, "a.img")
	writeImage(t, img, 64<<20, map[int64][]byte{0: pseudoRandom(11, 64<<20)})
	point = e.backupJSON("base", img).Point
	out = filepath.Join(e.dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	return e, img, point, out
}

// checkNothingHalfDone: the interrupted command left only the first point,
// no lock, no partial restore, and a repository verify passes.
func checkNothingHalfDone(t *testing.T, e *env, point, out string) {
	t.Helper()
	if ps := e.points(); len(ps) != 1 || ps[0].ID != point {
		t.Fatalf("points after the interruption: %+v", ps)
	}
	for _, dir := range []string{filepath.Join(e.repo, "locks"), out} {
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Fatalf("%s holds %d file(s) after the interruption (%s)", dir, len(left), left[0].Name())
		}
	}
	e.ok("verify")
}

// TestInterruptOnTerminal runs backup, restore and verify on a
// pseudo-terminal with live progress bars, and stops each with a typed
// Ctrl-C or SIGTERM: exit 130 at once, nothing half done. (The progress
// bar used to wait for ever for an interrupted bar to complete.)
func TestInterruptOnTerminal(t *testing.T) {
	e, img, point, out := signalEnv(t)
	for _, tc := range interruptCases(img, point, out) {
		t.Run(tc.name, func(t *testing.T) {
			p := startPTY(t, e.command(context.Background(), tc.args...))
			p.waitOutput(5*time.Minute, tc.show, " %", "/s")
			if tc.sig == syscall.SIGINT {
				p.typeKeys("\x03")
			} else if err := p.cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			code, took := p.waitExit(exitBound)
			t.Logf("%s on a terminal: exit %d %v after the signal", tc.name, code, took.Round(time.Millisecond))
			if code != exitInterrupted {
				t.Fatalf("exit %d, want %d:\n%q", code, exitInterrupted, p.output())
			}
			checkNothingHalfDone(t, e, point, out)
		})
	}
}

// TestInterruptOffTerminal: the same commands with their output in pipes
// end the same way. The signal is sent once the command has read 16 MiB.
func TestInterruptOffTerminal(t *testing.T) {
	e, img, point, out := signalEnv(t)
	for _, tc := range interruptCases(img, point, out) {
		t.Run(tc.name, func(t *testing.T) {
			cmd := e.command(context.Background(), tc.args...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			done := startUntil(t, cmd, "16 MiB read", func() bool { return readBytes(cmd) >= 16<<20 })
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			select {
			case <-done:
			case <-time.After(exitBound):
				_ = cmd.Process.Kill()
				t.Fatalf("still running %v after the signal; stderr %s", exitBound, stderr.String())
			}
			t.Logf("%s off a terminal: exit %d %v after the signal", tc.name, cmd.ProcessState.ExitCode(), time.Since(start).Round(time.Millisecond))
			if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
				t.Fatalf("exit %d, want %d; stderr %s", code, exitInterrupted, stderr.String())
			}
			checkNothingHalfDone(t, e, point, out)
		})
	}
}

// readBytes is how many bytes cmd's process has read (/proc/PID/io rchar).
func readBytes(cmd *exec.Cmd) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}

// TestInterruptAtPasswordPrompt: Ctrl-C at the password prompt ends the
// command with exit 130 and the terminal echoing again. (The read from the
// terminal ignored the cancelled context: only a second Ctrl-C ended it.)
func TestInterruptAtPasswordPrompt(t *testing.T) {
	e := newEnv(t)
	e.init()
	e.vars = append(e.vars, "HOLDFAST_PASSWORD=")
	p := startPTY(t, e.command(context.Background(), "points"))
	p.waitOutput(time.Minute, "Repository password: ")
	if p.echoOn() {
		t.Fatal("the prompt echoes the password")
	}
	p.typeKeys("\x03")
	code, took := p.waitExit(exitBound)
	t.Logf("Ctrl-C at the password prompt: exit %d %v after it", code, took.Round(time.Millisecond))
	if code != exitInterrupted {
		t.Fatalf("exit %d, want %d:\n%q", code, exitInterrupted, p.output())
	}
	if !p.echoOn() {
		t.Fatal("the interrupted prompt left the terminal without echo")
	}
}

// TestInterruptClientWaits: `job run --wait` and `session show --follow`
// of a session that cannot start (no proxy) end with exit 130 on Ctrl-C on
// a terminal and on SIGTERM off one, through the same context.
func TestInterruptClientWaits(t *testing.T) {
	c := newCluster(t, "")
	c.addRepository("repo1", 2, nil)
	c.waitAgents("repo1")
	img := filepath.Join(c.e.dir, "vm1.img")
	writeImage(t, img, 1<<20, nil)
	pw := filepath.Join(c.e.dir, "pw")
	if err := os.WriteFile(pw, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.e.ok("job", "create", "nightly", "--vm", "vm1="+img, "--repository", "repo1", "--password-file", pw)

	// job run --wait on a terminal: it says why the task waits, then Ctrl-C.
	p := startPTY(t, c.e.command(context.Background(), "job", "run", "nightly", "--wait"))
	p.waitOutput(2*time.Minute, "waiting")
	p.typeKeys("\x03")
	code, took := p.waitExit(exitBound)
	t.Logf("job run --wait on a terminal: exit %d %v after Ctrl-C", code, took.Round(time.Millisecond))
	if code != exitInterrupted {
		t.Fatalf("job run --wait: exit %d, want %d:\n%q", code, exitInterrupted, p.output())
	}

	var sessions []struct{ ID int64 }
	if err := json.Unmarshal([]byte(c.e.ok("session", "list", "--job", "nightly", "--json")), &sessions); err != nil || len(sessions) == 0 {
		t.Fatalf("session list: %v %v", sessions, err)
	}
	id := strconv.FormatInt(sessions[0].ID, 10)
	for _, onTerminal := range []bool{true, false} {
		cmd := c.e.command(context.Background(), "session", "show", id, "--follow")
		var stop func() (int, time.Duration)
		if onTerminal {
			p := startPTY(t, cmd)
			waitSocket(t, cmd)
			p.typeKeys("\x03")
			stop = func() (int, time.Duration) { return p.waitExit(exitBound) }
		} else {
			var out strings.Builder
			cmd.Stdout = &out
			done := startUntil(t, cmd, "the session shown", func() bool { return strings.Contains(out.String(), "queued") })
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			stop = func() (int, time.Duration) {
				start := time.Now()
				select {
				case <-done:
				case <-time.After(exitBound):
					_ = cmd.Process.Kill()
					t.Fatalf("session show --follow still running %v after SIGTERM", exitBound)
				}
				return cmd.ProcessState.ExitCode(), time.Since(start)
			}
		}
		code, took := stop()
		t.Logf("session show --follow (terminal %v): exit %d %v after the signal", onTerminal, code, took.Round(time.Millisecond))
		if code != exitInterrupted {
			t.Fatalf("session show --follow (terminal %v): exit %d, want %d", onTerminal, code, exitInterrupted)
		}
	}
}

// waitSocket waits until cmd's process holds a socket: it is talking to
// the server, past its start-up (where the signal handler is installed).
func waitSocket(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	fdDir := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/fd"
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join(fdDir, fd.Name())); strings.HasPrefix(l, "socket:") {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%v opened no socket", cmd.Args)
}
