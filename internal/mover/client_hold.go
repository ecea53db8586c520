package mover

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// HoldPoint records a hold on a point on the agent (repo.Hold): retention
// and gc keep the point while it is held. h.Since is set by the agent.
func (c *Client) HoldPoint(ctx context.Context, h repo.Hold) error {
	body, _ := json.Marshal(holdRequest{Who: h.Who, Why: h.Why})
	_, err := c.do(ctx, call{method: http.MethodPut, path: holdPath(h.Point, h.Holder), body: body, ctype: ctypeJSON,
		limit: maxSmallReply})
	if err != nil {
		return fmt.Errorf("hold point %s: %w", h.Point, err)
	}
	return nil
}

// ReleaseHold removes a hold on the agent.
func (c *Client) ReleaseHold(ctx context.Context, point, holder string) error {
	if _, err := c.do(ctx, call{method: http.MethodDelete, path: holdPath(point, holder), limit: maxSmallReply}); err != nil {
		return fmt.Errorf("release hold %s on point %s: %w", holder, point, err)
	}
	return nil
}

func holdPath(point, holder string) string {
	return "points/" + url.PathEscape(point) + "/holds/" + url.PathEscape(holder)
}
