package main

import (
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/spf13/cobra"
)

type restoreOptions struct {
	disk    int
	to      string
	workers int
}

func newRestoreCommand(a *app) *cobra.Command {
	var o restoreOptions
	c := &cobra.Command{
		Use:   "restore POINT --disk N --to PATH",
		Short: "Restore one disk of a restore point to a file or block device",
		Long: `Restore disk N of POINT (an ID, a unique ID prefix, "latest" or "VM:latest")
to PATH. A file is written sparse where the disk had zeros; a block device must
be at least as large as the disk.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRestore(cmd, a, o, args[0])
		},
	}
	c.Flags().IntVar(&o.disk, "disk", 0, "disk number")
	c.Flags().StringVar(&o.to, "to", "", "destination file or block device (required)")
	c.Flags().IntVar(&o.workers, "workers", 0, "parallel chunk readers (default 2 × CPUs)")
	return c
}

func runRestore(cmd *cobra.Command, a *app, o restoreOptions, ref string) error {
	if o.to == "" {
		return usageError{fmt.Errorf("--to PATH is required")}
	}
	ctx := cmd.Context()
	r, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	m, err := r.ResolvePoint(ctx, ref)
	if err != nil {
		return err
	}
	if o.disk < 0 || o.disk >= len(m.Disks) {
		return usageError{fmt.Errorf("point %s has %d disk(s); --disk %d does not exist", m.ID, len(m.Disks), o.disk)}
	}
	ix, err := r.LoadIndex(ctx, m, o.disk)
	if err != nil {
		return err
	}
	t, err := pipeline.OpenFileTarget(o.to, ix.DiskSize)
	if err != nil {
		return err
	}
	start := time.Now()
	bar := newProgress(a.stderr, fmt.Sprintf("restore %s disk %d", m.ID, o.disk), ix.DiskSize)
	st, err := pipeline.RestoreDisk(ctx, r, ix, t.RestoreTarget, pipeline.Options{Workers: o.workers, Progress: bar.Add})
	bar.Done()
	if err != nil {
		t.Abort()
		return fmt.Errorf("restore to %s failed (the output is incomplete): %w", o.to, err)
	}
	if err := t.Close(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "restored disk %d of %s (%s, %s) to %s in %s: %s written, %s zero\n", o.disk, m.ID, m.VM,
		m.Time.Local().Format("2006-01-02 15:04:05"), o.to, time.Since(start).Round(time.Millisecond),
		formatBytes(st.BytesWritten), formatBytes(st.BytesZero))
	return nil
}
