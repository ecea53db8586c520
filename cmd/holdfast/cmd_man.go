package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCommand builds the hidden `holdfast man --dir DIR`, which writes a
// man page (section 1) per command, generated from the commands themselves.
func newManCommand(a *app) *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:    "man --dir DIR",
		Short:  "Write the man pages of every command to DIR (holdfast.1, holdfast-backup.1 …)",
		Hidden: true,
		Args:   noArgs,
	}
	c.Flags().StringVar(&dir, "dir", "", "directory to write the pages to (created if needed; required)")
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if dir == "" {
			return usageError{errors.New("--dir DIR is required")}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		date := a.clock.Now()
		if epoch := a.getenv("SOURCE_DATE_EPOCH"); epoch != "" { // reproducible builds
			sec, err := strconv.ParseInt(epoch, 10, 64)
			if err != nil {
				return usageError{fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970", epoch)}
			}
			date = time.Unix(sec, 0).UTC()
		}
		root := cmd.Root()
		root.DisableAutoGenTag = true // no generation time in the footer
		hdr := &doc.GenManHeader{Title: "HOLDFAST", Section: "1", Source: "Holdfast", Manual: "Holdfast Manual", Date: &date}
		if err := doc.GenManTree(root, hdr, dir); err != nil {
			return fmt.Errorf("write man pages: %w", err)
		}
		_, err := fmt.Fprintf(a.stdout, "man pages written to %s\n", dir)
		return err
	}
	return c
}
