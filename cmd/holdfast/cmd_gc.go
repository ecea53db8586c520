package main

import (
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/spf13/cobra"
)

func newGCCommand(a *app) *cobra.Command {
	var o repo.GCOptions
	var asJSON bool
	c := &cobra.Command{
		Use:   "gc",
		Short: "Delete chunks no restore point references (mark and sweep)",
		Long: `Delete chunks that no restore point references and that are older than the
grace period. Safe while backups run: chunks a running backup uses are kept.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := a.openRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			a.leanHeap()
			res, err := r.GC(cmd.Context(), o)
			for _, w := range res.Warnings {
				fmt.Fprintf(a.stderr, "warning: %s\n", w)
			}
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(a.stdout, mustJSON(struct {
					DryRun bool `json:"dry_run"`
					repo.GCResult
				}{o.DryRun, res}))
			}
			verb := "removed"
			if o.DryRun {
				verb = "would remove"
			}
			fmt.Fprintf(a.stdout, "%d chunks referenced; %s %d unreferenced chunks (%s); kept %d younger than the grace period\n",
				res.Referenced, verb, res.Removed, formatBytes(res.RemovedBytes), res.Kept)
			if res.Locked.Kept > 0 {
				fmt.Fprintf(a.stdout, "kept %d unreferenced file(s) under Object Lock until %s at the latest\n",
					res.Locked.Kept, res.Locked.Until.Local().Format(time.RFC3339))
			}
			if res.RemovedIndexes+res.RemovedLocks+res.RemovedTemp+res.RemovedDirs > 0 {
				fmt.Fprintf(a.stdout, "cleaned %d orphaned index(es), %d stale lock(s), %d temporary file(s), %d empty director(ies)\n",
					res.RemovedIndexes, res.RemovedLocks, res.RemovedTemp, res.RemovedDirs)
			}
			return nil
		},
	}
	c.Flags().DurationVar(&o.Grace, "grace", time.Hour, "keep unreferenced data younger than this")
	c.Flags().BoolVar(&o.DryRun, "dry-run", false, "only count what would be removed")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}
