package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newRepoCacheCommand(a *app) *cobra.Command {
	c := &cobra.Command{Use: "cache", Short: "Manage this host's metadata cache of an object-storage repository"}
	c.AddCommand(&cobra.Command{
		Use:   "rebuild",
		Short: "Rebuild the chunk cache from the bucket alone",
		Long: `Rebuild this host's chunk cache (under the user's cache directory,
holdfast/<repository id>/chunks) by listing the bucket. Backups rebuild it
themselves when it is missing, damaged or older than the last gc; this
command does it ahead of a backup window. It fails while a gc runs.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := a.openRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			n, err := r.RebuildChunkCache(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "chunk cache rebuilt: %d chunks\n", n)
			return nil
		},
	})
	return c
}
