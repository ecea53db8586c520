package main

import (
	"encoding/json"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/spf13/cobra"
)

func newVerifyCommand(a *app) *cobra.Command {
	var readData, asJSON bool
	c := &cobra.Command{
		Use:   "verify",
		Short: "Check the repository; --read-data also reads and re-hashes every chunk",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			r, err := a.openRepo(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			a.leanHeap()
			o := repo.VerifyOptions{ReadData: readData}
			var bar progress
			if readData {
				bar = newProgress(a.stderr, "verify", 0)
				var last int64
				o.Progress = func(done, total int64) { bar.Add(done - last); last = done }
			}
			res, err := r.Verify(ctx, o)
			if bar != nil {
				bar.Done(err)
			}
			if err != nil {
				return err
			}
			return printVerify(a, res, asJSON)
		},
	}
	c.Flags().BoolVar(&readData, "read-data", false, "read, decrypt and re-hash every chunk")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func printVerify(a *app, res repo.VerifyResult, asJSON bool) error {
	for _, w := range res.Warnings {
		fmt.Fprintf(a.stderr, "warning: %s\n", w)
	}
	if res.Problems == nil {
		res.Problems = []repo.Problem{}
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "checked %d restore points, %d chunks referenced, %d chunks read\n", res.Points, res.Chunks, res.Checked)
		for _, p := range res.Problems {
			where := "repository"
			switch {
			case p.Point != "" && p.Disk < 0:
				where = fmt.Sprintf("point %s (%s)", p.Point, p.File)
			case p.Point != "":
				where = fmt.Sprintf("point %s (%s) disk %d bytes %d-%d", p.Point, p.VM, p.Disk, p.Offset, p.Offset+p.Length)
			}
			fmt.Fprintf(a.stdout, "DAMAGED %s: %s\n", where, p.Error)
		}
	}
	if len(res.Problems) > 0 {
		return damageError{fmt.Errorf("verify found %d problem(s)", len(res.Problems))}
	}
	if !asJSON {
		fmt.Fprintln(a.stdout, "no errors found")
	}
	return nil
}
