package background

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

func TestStart(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	tests := []struct {
		name, script string
		timeout      time.Duration
		want         string
	}{
		{"ready", "touch " + ready + "; exec sleep 30", time.Minute, ""},
		{"exits first", "echo one; echo two; echo 'the point is damaged' >&2; exit 3", time.Minute, "did not start (exit status 3): one\ntwo\nthe point is damaged"},
		{"never ready", "exec sleep 30", 0, "did not answer within 0 s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(ready)
			cmd := exec.Command("sh", "-c", tc.script)
			err := Start(context.Background(), Options{Cmd: cmd, LogPath: filepath.Join(dir, tc.name+".log"), What: "the test",
				Timeout: tc.timeout, Clock: clock.Real(), Ready: func() bool { _, err := os.Stat(ready); return err == nil }})
			if cmd.Process != nil {
				defer func() { _ = cmd.Process.Kill() }()
			}
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("Start: %v, want %q", err, tc.want)
			}
			if tc.want == "" && cmd.SysProcAttr == nil || !cmd.SysProcAttr.Setsid {
				t.Error("not in a session of its own")
			}
		})
	}
}

func TestLastLines(t *testing.T) {
	if got := LastLines("a\nb\nc\n", 2); got != "b\nc" {
		t.Errorf("%q", got)
	}
}

// TestStartStopsWithSIGTERM: a process whose start is abandoned (ctx
// ends) is asked to end with SIGTERM, so it can undo what it set up, not
// killed.
func TestStartStopsWithSIGTERM(t *testing.T) {
	dir := t.TempDir()
	trapped, term := filepath.Join(dir, "trapped"), filepath.Join(dir, "term")
	cmd := exec.Command("sh", "-c", "trap 'touch "+term+"; exit 0' TERM; touch "+trapped+"; sleep 30 & wait")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := Start(ctx, Options{Cmd: cmd, LogPath: filepath.Join(dir, "log"), What: "the test", Timeout: time.Hour,
		Ready: func() bool {
			if _, err := os.Stat(trapped); err == nil {
				cancel() // the trap is set: give up on it
			}
			return false
		}})
	if err == nil {
		t.Fatal("abandoned, yet no error")
	}
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }) // its sleep, in its session
	for deadline := time.Now().Add(time.Minute); ; {
		if _, err := os.Stat(term); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the process got no SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A symbolic link, a FIFO or another user's file at the log path is
// refused before the process starts, and nothing is written through it.
func TestStartRefusesAnUnsafeLog(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.log")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	paths := []string{link, fifo}
	if os.Geteuid() == 0 {
		other := filepath.Join(dir, "other.log")
		if err := os.WriteFile(other, nil, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, other)
	} else {
		t.Log("not root: the case of another user's file is not run")
	}
	for _, p := range paths {
		cmd := exec.Command("sh", "-c", "echo written")
		err := Start(context.Background(), Options{Cmd: cmd, LogPath: p, What: "the test", Timeout: time.Minute,
			Ready: func() bool { return true }})
		if !errors.Is(err, ErrUnsafeLog) {
			t.Errorf("%s: %v, want ErrUnsafeLog", filepath.Base(p), err)
		}
		if cmd.Process != nil {
			_ = cmd.Wait()
			t.Errorf("%s: the process started", filepath.Base(p))
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
		t.Errorf("the link's target was written: %q", b)
	}
}
