package qmp

import (
	"context"
	"errors"
)

// Status is the run state of a VM (query-status).
type Status struct {
	Running bool   `json:"running"`
	Status  string `json:"status"` // "running", "paused", "prelaunch", "shutdown", ...
}

// QueryStatus returns the VM's run state. qemu-storage-daemon has no such
// command (CommandNotFound).
func (c *Client) QueryStatus(ctx context.Context) (Status, error) {
	var s Status
	err := c.Execute(ctx, "query-status", nil, &s)
	return s, err
}

// HumanMonitorCommand runs an HMP command line and returns its output.
// HMP reports most failures in the output text, not as an error.
// qemu-storage-daemon has no HMP.
func (c *Client) HumanMonitorCommand(ctx context.Context, cmd string) (string, error) {
	var out string
	err := c.Execute(ctx, "human-monitor-command", map[string]string{"command-line": cmd}, &out)
	return out, err
}

// Quit asks QEMU to exit (cleanly: persistent dirty bitmaps are stored) and
// waits for the connection to end or ctx to end.
func (c *Client) Quit(ctx context.Context) error {
	err := c.Execute(ctx, "quit", nil, nil)
	if err != nil && !errors.Is(err, ErrDisconnected) {
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
