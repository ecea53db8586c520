package qmp

import (
	"context"
	"fmt"
	"time"
)

// Ping checks that the guest agent answers (guest-ping).
func (a *Agent) Ping(ctx context.Context) error {
	return a.Execute(ctx, "guest-ping", nil, nil)
}

// FsFreeze freezes the guest's filesystems (guest-fsfreeze-freeze) and
// returns how many were frozen. Thaw them with FsThaw, even on error: a
// partial freeze is possible.
func (a *Agent) FsFreeze(ctx context.Context) (int, error) {
	var n int
	err := a.Execute(ctx, "guest-fsfreeze-freeze", nil, &n)
	return n, err
}

// FsThaw thaws the guest's filesystems (guest-fsfreeze-thaw) and returns
// how many were thawed.
func (a *Agent) FsThaw(ctx context.Context) (int, error) {
	var n int
	err := a.Execute(ctx, "guest-fsfreeze-thaw", nil, &n)
	return n, err
}

// FsFreezeStatus returns "thawed" or "frozen" (guest-fsfreeze-status).
func (a *Agent) FsFreezeStatus(ctx context.Context) (string, error) {
	var s string
	err := a.Execute(ctx, "guest-fsfreeze-status", nil, &s)
	return s, err
}

// ExecRequest are the arguments of guest-exec. Input is sent base64-encoded
// as the process's standard input.
type ExecRequest struct {
	Path          string   `json:"path"`
	Args          []string `json:"arg,omitempty"`
	Env           []string `json:"env,omitempty"` // "NAME=value"
	Input         []byte   `json:"input-data,omitempty"`
	CaptureOutput bool     `json:"capture-output,omitempty"`
}

// ExecStatus is the reply of guest-exec-status; output is decoded from
// base64. ExitCode is meaningful when Exited and Signal is 0.
type ExecStatus struct {
	Exited          bool   `json:"exited"`
	ExitCode        int    `json:"exitcode"`
	Signal          int    `json:"signal"`
	Stdout          []byte `json:"out-data"`
	Stderr          []byte `json:"err-data"`
	StdoutTruncated bool   `json:"out-truncated"`
	StderrTruncated bool   `json:"err-truncated"`
}

// Exec starts a process in the guest (guest-exec) and returns its pid.
func (a *Agent) Exec(ctx context.Context, req ExecRequest) (int, error) {
	var r struct {
		PID int `json:"pid"`
	}
	err := a.Execute(ctx, "guest-exec", req, &r)
	return r.PID, err
}

// ExecStatus polls a process started by Exec (guest-exec-status). Once it
// reports Exited, the agent forgets the pid.
func (a *Agent) ExecStatus(ctx context.Context, pid int) (ExecStatus, error) {
	var st ExecStatus
	err := a.Execute(ctx, "guest-exec-status", map[string]int{"pid": pid}, &st)
	return st, err
}

// Run starts a process with output captured and polls it every interval
// (100 ms when 0) until it exits or ctx ends. A non-zero exit is not an
// error: check the status.
func (a *Agent) Run(ctx context.Context, req ExecRequest, interval time.Duration) (ExecStatus, error) {
	if interval <= 0 {
		interval = 100 * time.Millisecond
	}
	req.CaptureOutput = true
	pid, err := a.Exec(ctx, req)
	if err != nil {
		return ExecStatus{}, err
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		st, err := a.ExecStatus(ctx, pid)
		if err != nil || st.Exited {
			return st, err
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return ExecStatus{}, fmt.Errorf("qga: waiting for guest pid %d: %w", pid, ctx.Err())
		}
	}
}
