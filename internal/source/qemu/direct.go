package qemu

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/qmp"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/file"
	nbdsource "github.com/holdfast-backup/holdfast/internal/source/nbd"
)

// Direct storage access (seed 002 §5.1): the snapshot is an external
// overlay that takes the guest's writes while Holdfast reads the frozen
// base image straight from storage; afterwards the overlay is committed back
// (block-commit) — the snapshot create → read → commit cycle. The frozen
// dirty bitmap still limits what is read; its extents come from a
// metadata-only NBD export of the base node.

func overlayNode(i int) string { return "hf-overlay-" + strconv.Itoa(i) }
func commitJob(i int) string   { return "hf-commit-" + strconv.Itoa(i) }
func overlayFile(runDir string, i int) string {
	return filepath.Join(runDir, fmt.Sprintf("overlay-%d.qcow2", i))
}

// directPossible says why a disk cannot be read directly, or "".
func directPossible(d vmDisk) string {
	if d.Format != "qcow2" && d.Format != "raw" {
		return fmt.Sprintf("disk %s: format %q cannot be read directly", d.Device, d.Format)
	}
	if strings.HasPrefix(d.File, "json:") || strings.Contains(d.File, "://") {
		return fmt.Sprintf("disk %s: image %s is not a local file", d.Device, d.File)
	}
	st, err := os.Stat(d.File)
	if err != nil {
		return fmt.Sprintf("disk %s: image %s is not reachable from this host", d.Device, d.File)
	}
	if !st.Mode().IsRegular() && st.Mode()&os.ModeDevice == 0 {
		return fmt.Sprintf("disk %s: %s is not a file or block device", d.Device, d.File)
	}
	return ""
}

// snapshotAction redirects the guest's writes to a new overlay.
func snapshotAction(runDir string, i int, d vmDisk) qmp.Action {
	return qmp.Action{Type: "blockdev-snapshot-sync", Data: map[string]string{
		"node-name": d.Node, "snapshot-file": overlayFile(runDir, i),
		"snapshot-node-name": overlayNode(i), "format": "qcow2"}}
}

// commitOverlay merges an overlay back into its base (active commit) and
// waits until the guest runs on the base again.
func commitOverlay(ctx context.Context, c *qmp.Client, overlay, job string) error {
	sub := c.Subscribe("BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED", "JOB_STATUS_CHANGE")
	defer sub.Close()
	if err := c.Execute(ctx, "block-commit", map[string]string{"job-id": job, "device": overlay}, nil); err != nil {
		return fmt.Errorf("commit overlay %s: %w", overlay, err)
	}
	if _, err := sub.Wait(ctx, "BLOCK_JOB_READY", qmp.MatchField("device", job)); err != nil {
		return fmt.Errorf("commit overlay %s: wait for ready: %w", overlay, err)
	}
	if err := c.Execute(ctx, "block-job-complete", map[string]string{"device": job}, nil); err != nil {
		return fmt.Errorf("complete commit of %s: %w", overlay, err)
	}
	ev, err := sub.Wait(ctx, "BLOCK_JOB_COMPLETED", qmp.MatchField("device", job))
	if err != nil {
		return fmt.Errorf("commit overlay %s: %w", overlay, err)
	}
	if msg := ev.Field("error"); msg != "" {
		return fmt.Errorf("commit overlay %s failed: %s (the VM still writes to the overlay)", overlay, msg)
	}
	if _, err := sub.Wait(ctx, "JOB_STATUS_CHANGE", func(e qmp.Event) bool {
		return e.Field("id") == job && e.Field("status") == "null"
	}); err != nil {
		return fmt.Errorf("commit overlay %s: %w", overlay, err)
	}
	return nil
}

// commitLeftoverOverlays commits overlays a killed run left under the guest.
func commitLeftoverOverlays(ctx context.Context, c *qmp.Client) ([]string, error) {
	devs, err := c.QueryBlock(ctx)
	if err != nil {
		return nil, err
	}
	var done []string
	for i, d := range devs {
		if node := d.NodeName(); strings.HasPrefix(node, "hf-overlay-") {
			if err := commitOverlay(ctx, c, node, "hf-commit-leftover-"+strconv.Itoa(i)); err != nil {
				return done, err
			}
			if d.Inserted != nil {
				os.Remove(d.Inserted.File)
			}
			done = append(done, "overlay "+node)
		}
	}
	return done, nil
}

// directDisk reads the frozen base image from storage; its change feed
// comes from the metadata export.
type directDisk struct {
	source.Disk
	meta *nbdsource.Disk // nil when there is no base bitmap
	plan bitmapPlan
}

func openDirect(ctx context.Context, d vmDisk, p bitmapPlan, metaURL string) (*directDisk, error) {
	// The format comes from QEMU, never from the image's bytes; a qcow2
	// image QEMU runs is the host's, and so is its backing chain.
	fd, err := file.Open(ctx, d.File, file.Options{Format: d.Format, FollowBacking: d.Format == file.FormatQcow2})
	if err != nil {
		return nil, fmt.Errorf("read %s directly: %w", d.File, err)
	}
	dd := &directDisk{Disk: fd, plan: p}
	if p.Base != "" {
		dd.meta, err = nbdsource.Open(ctx, metaURL, nbdsource.Options{Bitmap: p.Base, ChangeID: p.New, PreviousChangeID: p.Base})
		if err != nil {
			fd.Close()
			return nil, fmt.Errorf("bitmap export of %s: %w", d.Device, err)
		}
	}
	return dd, nil
}

// Describe reports the image read and the direct transport.
func (d *directDisk) Describe() source.Info {
	info := d.Disk.Describe()
	info.Transport = source.TransportDirect
	return info
}

// ChangeID is the bitmap created for the next backup.
func (d *directDisk) ChangeID() string { return d.plan.New }

// Changed returns the frozen bitmap's dirty extents.
func (d *directDisk) Changed(ctx context.Context, prev string) (source.Changes, error) {
	if d.meta == nil {
		return source.Changes{Reason: d.plan.Reason}, nil
	}
	return d.meta.Changed(ctx, prev)
}

// Close closes the image and the metadata connection.
func (d *directDisk) Close() error {
	if d.meta != nil {
		d.meta.Close()
	}
	return d.Disk.Close()
}
