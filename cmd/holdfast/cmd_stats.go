package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func newStatsCommand(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "stats",
		Short: "Show logical and stored size, dedup and compression ratios",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := a.openRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			s, err := r.Stats(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			fmt.Fprintf(a.stdout, "restore points:     %d (%d disks)\n", s.Points, s.Disks)
			fmt.Fprintf(a.stdout, "logical size:       %s (disk sizes), %s of data\n", formatBytes(s.LogicalBytes), formatBytes(s.DataBytes))
			fmt.Fprintf(a.stdout, "unique data:        %s in %d chunks\n", formatBytes(s.UniqueBytes), s.UniqueChunks)
			fmt.Fprintf(a.stdout, "stored size:        %s (+ %s metadata)\n", formatBytes(s.StoredBytes), formatBytes(s.MetadataBytes))
			fmt.Fprintf(a.stdout, "dedup ratio:        %.2fx\n", s.DedupRatio)
			fmt.Fprintf(a.stdout, "compression ratio:  %.2fx\n", s.CompressionRatio)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return c
}
