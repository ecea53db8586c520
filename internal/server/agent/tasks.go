package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// NextTask waits up to wait (long poll) for the proxy's next task attempt;
// it returns nil when none came.
func (c *Client) NextTask(ctx context.Context, wait time.Duration) (*taskproto.Spec, error) {
	var spec taskproto.Spec
	err := c.api.Do(ctx, "POST", "/api/v1/agents/tasks/next", taskproto.NextRequest{WaitSeconds: int(wait / time.Second)}, &spec)
	if err != nil {
		return nil, err
	}
	if spec.TaskID == 0 {
		return nil, nil
	}
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("server sent an invalid task: %w", err)
	}
	return &spec, nil
}

// TaskProgress reports a running attempt's progress; taskproto.ErrStale
// means the server no longer runs the attempt.
func (c *Client) TaskProgress(ctx context.Context, p taskproto.Progress) error {
	return stale(c.api.Do(ctx, "POST", "/api/v1/agents/tasks/progress", p, nil))
}

// TaskResult ends an attempt; taskproto.ErrStale means the server no longer
// runs it (its result is dropped).
func (c *Client) TaskResult(ctx context.Context, r taskproto.Result) error {
	return stale(c.api.Do(ctx, "POST", "/api/v1/agents/tasks/result", r, nil))
}

func stale(err error) error {
	if errors.Is(err, apitypes.ErrConflict) {
		return fmt.Errorf("%w: %w", taskproto.ErrStale, err)
	}
	return err
}
