package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/spf13/cobra"
)

type repoRecoverOptions struct {
	dryRun bool
	asJSON bool
}

func newRepoRecoverCommand(a *app) *cobra.Command {
	var o repoRecoverOptions
	c := &cobra.Command{
		Use:   "recover",
		Short: "Bring back files hidden by a plain DELETE or overwrite in a versioned bucket",
		Long: `In a versioned bucket (Object Lock), deleting an object without a version
only hides it behind a delete marker, and a PUT over it only hides it behind a
newer version. recover removes those layers above every file a restore point
needs (config, keys, points, indexes, chunks, scan records), making the kept
version current again, and names the points that came back. It needs the
storage credentials but no repository password. Run 'holdfast verify' after.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			be, err := a.backend()
			if err != nil {
				return err
			}
			res, err := repo.Recover(cmd.Context(), be, o.dryRun)
			if err != nil {
				return err
			}
			if o.asJSON {
				return printJSON(a.stdout, mustJSON(res))
			}
			a.printRecovered(res)
			return nil
		},
	}
	c.Flags().BoolVar(&o.dryRun, "dry-run", false, "only show what would come back")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	return c
}

func (a *app) printRecovered(res repo.RecoverResult) {
	verb := "brought back"
	if res.DryRun {
		verb = "would bring back"
	}
	if len(res.Files) == 0 {
		fmt.Fprintln(a.stdout, "nothing hidden: every file is current")
		return
	}
	dirs := make([]string, 0, len(res.Files))
	for d, n := range res.Files {
		dirs = append(dirs, fmt.Sprintf("%s %d", d, n))
	}
	sort.Strings(dirs)
	fmt.Fprintf(a.stdout, "%s %s (removed %d delete marker(s), %d overwrite(s))\n", verb, strings.Join(dirs, ", "), res.DeleteMarkers, res.Overwrites)
	for _, p := range res.Points {
		fmt.Fprintf(a.stdout, "point %s\n", p)
	}
}
