package mover

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
)

// Maintain runs gc and/or verify on the agent's repository (maintenance
// jobs; the agent allows it to the backup server only) and returns what
// each part found. It waits for the work to end.
func (c *Client) Maintain(ctx context.Context, req MaintainRequest) (MaintainResult, error) {
	body, _ := json.Marshal(req)
	b, err := c.do(ctx, call{method: http.MethodPost, path: "maintenance", body: body, ctype: ctypeJSON,
		limit: maxMaintainReply, timeout: maintainTimeout})
	if err != nil {
		return MaintainResult{}, fmt.Errorf("repository maintenance: %w", err)
	}
	var res MaintainResult
	if err := json.Unmarshal(b, &res); err != nil {
		return MaintainResult{}, fmt.Errorf("repository maintenance: reply: %w", err)
	}
	return res, nil
}
