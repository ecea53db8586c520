package mover

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// PutScan records a malware scan of a point on the agent: the record is
// sealed here with the repository key (repo.SealScan) and the agent stores
// it only if the point exists and has no record of that engine yet
// (repo.PutSealedScan): an existing one is kept and the error wraps
// repo.ErrScanExists.
func (c *Client) PutScan(ctx context.Context, s repo.ScanRecord) error {
	_, blob, err := c.keys.SealScan(s)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, call{method: http.MethodPut, path: scanPath(s.Point, s.Engine), body: blob, ctype: ctypeBinary,
		limit: maxSmallReply})
	if err != nil {
		return fmt.Errorf("record scan of point %s: %w", s.Point, err)
	}
	return nil
}

func scanPath(point, engine string) string {
	return "points/" + url.PathEscape(point) + "/scans/" + url.PathEscape(engine)
}
