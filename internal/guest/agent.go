package guest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/holdfast-backup/holdfast/internal/qmp"
)

// pollInterval is how often guest-exec-status is asked.
const pollInterval = 100 * time.Millisecond

// agentKill is run through guest-exec after a timeout, with the pid of the
// script's shell as $1: qemu-ga does not make it a group leader, so its
// children are signalled by parent pid as well (pkill, when present), and
// after 2 s everything left is killed.
const agentKill = `kill -TERM -"$1" 2>/dev/null; pkill -TERM -P "$1" 2>/dev/null; kill -TERM "$1" 2>/dev/null
i=0
while kill -0 "$1" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done
pkill -KILL -P "$1" 2>/dev/null; kill -KILL "$1" 2>/dev/null
exit 0`

// dialAgent connects to the guest agent at sock. Failures are *noPathError:
// a missing socket or an agent that does not answer is no path.
func dialAgent(ctx context.Context, sock string) (*qmp.Agent, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	a, err := qmp.DialAgent(ctx, sock)
	if err != nil {
		return nil, &noPathError{fmt.Errorf("guest agent %s: %w", sock, err)}
	}
	return a, nil
}

// runAgent runs s through a with guest-exec of /bin/sh -s, the script on
// its stdin, bounded by ctx.
func runAgent(ctx context.Context, a *qmp.Agent, s Script, res *Result, timeout time.Duration) error {
	pid, err := a.Exec(ctx, qmp.ExecRequest{
		Path:          "/bin/sh",
		Args:          []string{"-s"},
		Input:         []byte(s.Body),
		CaptureOutput: true,
	})
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
			<-ctx.Done()
			return timeoutError(ctx, s, ViaAgent, timeout, nil)
		}
		return fmt.Errorf("guest agent: start script %q: %w", s.Name, err)
	}
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		st, err := a.ExecStatus(ctx, pid)
		switch {
		case err == nil && st.Exited:
			return agentResult(s, st, res)
		case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
			// A call's own copy of the deadline can fire a moment before
			// ctx's: wait for ctx, so the error says timeout.
			<-ctx.Done()
			killErr := killAgent(context.WithoutCancel(ctx), a, pid)
			return timeoutError(ctx, s, ViaAgent, timeout, killErr)
		case err != nil:
			return fmt.Errorf("guest agent: script %q (pid %d): %w", s.Name, pid, err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
}

// agentResult fills res from the final status of the script.
func agentResult(s Script, st qmp.ExecStatus, res *Result) error {
	res.Output = combineOutput(st.Stdout, st.Stderr, st.StdoutTruncated || st.StderrTruncated)
	res.ExitCode = st.ExitCode
	if st.Signal != 0 {
		res.ExitCode = -1
		return &ScriptError{Name: s.Name, Via: ViaAgent, ExitCode: -1, Signal: strconv.Itoa(st.Signal), Output: res.Output}
	}
	if st.ExitCode != 0 {
		return &ScriptError{Name: s.Name, Via: ViaAgent, ExitCode: st.ExitCode, Output: res.Output}
	}
	return nil
}

// killAgent signals the script's processes and collects the exit status so
// that the agent forgets the pid.
func killAgent(ctx context.Context, a *qmp.Agent, pid int) error {
	ctx, cancel := context.WithTimeout(ctx, killTimeout)
	defer cancel()
	_, err := a.Run(ctx, qmp.ExecRequest{
		Path: "/bin/sh",
		Args: []string{"-c", agentKill, "sh", strconv.Itoa(pid)},
	}, pollInterval)
	if err != nil {
		return err
	}
	_, _ = a.ExecStatus(ctx, pid) // reap; the status no longer matters
	return nil
}
