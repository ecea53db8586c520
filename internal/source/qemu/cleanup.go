package qemu

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/qmp"
)

// cleanupLeftovers removes every QEMU object a killed Holdfast run left
// behind (exports, NBD server, fleecing jobs and nodes, overlay files) and
// reports what it removed. Bitmaps are settled per disk by planBitmaps.
func cleanupLeftovers(ctx context.Context, c *qmp.Client, runDir string) ([]string, error) {
	var removed []string
	var exports []struct {
		ID string `json:"id"`
	}
	if err := c.Execute(ctx, "query-block-exports", nil, &exports); err != nil {
		return nil, fmt.Errorf("query-block-exports: %w", err)
	}
	for _, e := range exports {
		if strings.HasPrefix(e.ID, "hf-") {
			if err := removeExport(ctx, c, e.ID); err != nil {
				return removed, err
			}
			removed = append(removed, "export "+e.ID)
		}
	}
	if len(removed) > 0 {
		if err := stopNBD(ctx, c); err != nil {
			return removed, err
		}
	}
	jobs, err := c.BlockJobs(ctx)
	if err != nil {
		return removed, err
	}
	for _, j := range jobs {
		if strings.HasPrefix(j.Device, "hf-") {
			if err := cancelJob(ctx, c, j.Device); err != nil {
				return removed, err
			}
			removed = append(removed, "job "+j.Device)
		}
	}
	committed, err := commitLeftoverOverlays(ctx, c)
	removed = append(removed, committed...)
	if err != nil {
		return removed, err
	}
	nodes, err := c.QueryNamedBlockNodes(ctx, true)
	if err != nil {
		return removed, err
	}
	for _, n := range nodes {
		if strings.HasPrefix(n.NodeName, "hf-fleece-") {
			if err := c.Execute(ctx, "blockdev-del", map[string]string{"node-name": n.NodeName}, nil); err != nil && !notFound(err) {
				return removed, fmt.Errorf("delete leftover node %s: %w", n.NodeName, err)
			}
			removed = append(removed, "node "+n.NodeName)
		}
	}
	if err := os.RemoveAll(runDir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return removed, err
	}
	return removed, nil
}
