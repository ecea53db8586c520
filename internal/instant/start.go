package instant

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// StartTimeout is how long Start waits for a session's exports to answer.
const StartTimeout = 60 * time.Second

// StartOptions start a session in the background (Registry.Start).
type StartOptions struct {
	// RedoDir is where the session's redo directory goes (an absolute
	// path): its subdirectory named after a new session ID, or RedoDir
	// itself when it is a stopped session's redo directory, which
	// restarts that session (same ID, export paths and NFS file handles).
	RedoDir string
	// Command returns the serving process (`holdfast instant-recovery
	// serve … --id ID --redo-dir DIR`, which runs Serve) for the session's
	// ID and redo directory. Start sets its output and session.
	Command func(id, redoDir string) (*exec.Cmd, error)
}

// Start runs a session's serving process in the background, in a session
// of its own with its output in serve.log in the redo directory, and waits
// (on the registry's clock, at most StartTimeout) until the process
// records that its exports answer. If the process exits first, the error
// quotes the end of its log; if it does not answer in time, or ctx ends,
// the process is killed.
func (r Registry) Start(ctx context.Context, o StartOptions) (Record, error) {
	redo, id, err := r.SessionDir(o.RedoDir, NewID())
	if err != nil {
		return Record{}, err
	}
	if rec, err := r.Load(id); err == nil && rec.State() == "serving" {
		return Record{}, fmt.Errorf("session %s is already serving from %s", rec.ID, redo)
	}
	logPath := filepath.Join(redo, "serve.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return Record{}, err
	}
	defer logf.Close()
	cmd, err := o.Command(id, redo)
	if err != nil {
		return Record{}, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Record{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return r.waitServing(ctx, id, cmd, exited, logPath)
}

// waitServing polls the registry until session id serves, its process
// exits, StartTimeout passes or ctx ends.
func (r Registry) waitServing(ctx context.Context, id string, cmd *exec.Cmd, exited <-chan error, logPath string) (Record, error) {
	clk := r.clk()
	deadline := clk.Now().Add(StartTimeout)
	for {
		if rec, err := r.Load(id); err == nil && rec.State() == "serving" {
			return rec, nil
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			return Record{}, fmt.Errorf("the recovery session did not start (%v): %s", err, strings.TrimSpace(lastLines(string(b), 5)))
		default:
		}
		if clk.Now().After(deadline) {
			_ = cmd.Process.Kill()
			return Record{}, fmt.Errorf("the recovery session did not answer within %.0f s (log: %s)", StartTimeout.Seconds(), logPath)
		}
		if err := clk.Sleep(ctx, 50*time.Millisecond); err != nil {
			_ = cmd.Process.Kill()
			return Record{}, err
		}
	}
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
