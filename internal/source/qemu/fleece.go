package qemu

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/holdfast-backup/holdfast/internal/qmp"
)

// Names of the QEMU objects of disk i; everything Holdfast creates starts
// with "hf-" so a later run can find and remove leftovers.
func fleeceNode(i int) string { return "hf-fleece-" + strconv.Itoa(i) }
func fleeceJob(i int) string  { return "hf-fleece-job-" + strconv.Itoa(i) }
func exportID(i int) string   { return "hf-export-" + strconv.Itoa(i) }
func exportName(i int) string { return "hf-disk-" + strconv.Itoa(i) }

// addFleece creates the overlay image and node for disk i. The node reads
// through to the disk until the backup job copies old data into it.
func addFleece(ctx context.Context, c *qmp.Client, runDir string, i int, d vmDisk) error {
	file := filepath.Join(runDir, fmt.Sprintf("fleece-%d.qcow2", i))
	out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", file, strconv.FormatInt(d.Size, 10)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("create fleecing image: %v: %s", err, out)
	}
	args := map[string]any{
		"driver":    "qcow2",
		"node-name": fleeceNode(i),
		"file":      map[string]any{"driver": "file", "filename": file},
		"backing":   d.Node,
		"discard":   "unmap",
	}
	if err := c.Execute(ctx, "blockdev-add", args, nil); err != nil {
		os.Remove(file)
		return fmt.Errorf("add fleecing node for %s: %w", d.Device, err)
	}
	return nil
}

// fleeceAction starts copy-before-write from the disk into its overlay.
func fleeceAction(i int, d vmDisk) qmp.Action {
	return qmp.Backup(qmp.BlockdevBackup{JobID: fleeceJob(i), Device: d.Node, Target: fleeceNode(i), Sync: "none"})
}

// removeFleece cancels the job, deletes the node and its file. Each step
// tolerates the object being gone already.
func removeFleece(ctx context.Context, c *qmp.Client, runDir string, i int) error {
	if err := cancelJob(ctx, c, fleeceJob(i)); err != nil {
		return err
	}
	if err := c.Execute(ctx, "blockdev-del", map[string]string{"node-name": fleeceNode(i)}, nil); err != nil && !notFound(err) {
		return fmt.Errorf("delete fleecing node: %w", err)
	}
	os.Remove(filepath.Join(runDir, fmt.Sprintf("fleece-%d.qcow2", i)))
	return nil
}

// cancelJob cancels a block job and waits until QEMU has dismissed it.
func cancelJob(ctx context.Context, c *qmp.Client, id string) error {
	sub := c.Subscribe("JOB_STATUS_CHANGE")
	defer sub.Close()
	err := c.Execute(ctx, "block-job-cancel", map[string]any{"device": id, "force": true}, nil)
	if err != nil {
		if qmp.IsClass(err, qmp.ClassDeviceNotActive) || notFound(err) {
			return nil
		}
		return fmt.Errorf("cancel job %s: %w", id, err)
	}
	_, err = sub.Wait(ctx, "JOB_STATUS_CHANGE", func(e qmp.Event) bool {
		return e.Field("id") == id && e.Field("status") == "null"
	})
	if err != nil {
		return fmt.Errorf("wait for job %s to end: %w", id, err)
	}
	return nil
}
