package background

import (
	"context"
	"errors"
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
	logf, err := openLog(o.LogPath)
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

// ErrUnsafeLog is a log path that is not a regular file of this user: a
// symbolic link (which could make the process write over another file), a
// device, or another user's file.
var ErrUnsafeLog = errors.New("is not a regular file of this user")

// openLog opens (creates, 0600) the log at path for appending, without
// following a symbolic link there, and checks that what it opened is a
// regular file of this user.
func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0o600)
	switch {
	case errors.Is(err, syscall.ELOOP):
		return nil, fmt.Errorf("log %s: %w (a symbolic link)", path, ErrUnsafeLog)
	case errors.Is(err, syscall.ENXIO): // a FIFO without a reader (O_NONBLOCK: not waited for)
		return nil, fmt.Errorf("log %s: %w", path, ErrUnsafeLog)
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.Mode().IsRegular() || !ok || int(st.Uid) != os.Geteuid() {
		_ = f.Close()
		return nil, fmt.Errorf("log %s: %w", path, ErrUnsafeLog)
	}
	return f, nil
}

// LastLines returns the last n lines of s.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
