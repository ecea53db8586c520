package background

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// Options say what to start and how to know it is ready.
type Options struct {
	Cmd     *exec.Cmd
	LogPath string        // the process's stdout and stderr (appended)
	What    string        // names the process in errors: "the recovery session"
	Timeout time.Duration // how long to wait for Ready
	// Ready reports whether the process is ready (its record says so).
	Ready func() bool
	Clock clock.Clock // nil: the real clock
}

// Start starts o.Cmd in the background and waits until o.Ready.
func Start(ctx context.Context, o Options) error {
	logf, err := os.OpenFile(o.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := o.Cmd
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	clk := clock.Or(o.Clock)
	deadline := clk.Now().Add(o.Timeout)
	for {
		if o.Ready() {
			return nil
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(o.LogPath)
			return fmt.Errorf("%s did not start (%v): %s", o.What, err, strings.TrimSpace(LastLines(string(b), 5)))
		default:
		}
		if clk.Now().After(deadline) {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return fmt.Errorf("%s did not answer within %.0f s (log: %s)", o.What, o.Timeout.Seconds(), o.LogPath)
		}
		if err := clk.Sleep(ctx, 50*time.Millisecond); err != nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			return err
		}
	}
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
