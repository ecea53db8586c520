package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/spf13/cobra"
)

func newPointsCommand(a *app) *cobra.Command {
	var asJSON bool
	var vm string
	c := &cobra.Command{
		Use:   "points",
		Short: "List restore points",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := a.openRepo(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			ms, damaged, err := r.ScanPoints(cmd.Context())
			if err != nil {
				return err
			}
			warnDamagedPoints(a, damaged)
			return printPoints(a, ms, vm, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	c.Flags().StringVar(&vm, "vm", "", "only points of this VM")
	return c
}

// pointJSON is one element of `points --json` (shared with the server's
// `point list --json`).
type pointJSON struct {
	ID    string     `json:"id"`
	VM    string     `json:"vm"`
	Time  time.Time  `json:"time"`
	Disks []diskJSON `json:"disks"`
}

func printPoints(a *app, ms []*repo.Manifest, vm string, asJSON bool) error {
	list := []pointJSON{}
	for _, m := range ms {
		if vm != "" && m.VM != vm {
			continue
		}
		p := pointJSON{ID: m.ID, VM: m.VM, Time: m.Time, Disks: []diskJSON{}}
		for _, d := range m.Disks {
			p.Disks = append(p.Disks, toDiskJSON(d))
		}
		list = append(list, p)
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(list)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVM\tTIME\tDISKS\tSIZE")
	for _, p := range list {
		var size int64
		for _, d := range p.Disks {
			size += d.Size
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", p.ID, p.VM, p.Time.Local().Format("2006-01-02 15:04:05"), len(p.Disks), formatBytes(size))
	}
	return tw.Flush()
}

// warnDamagedPoints names, on stderr, the files under points/ that are not
// loadable restore points; the commands carry on with the others.
func warnDamagedPoints(a *app, damaged []repo.DamagedPoint) {
	for _, d := range damaged {
		if d.Stray {
			fmt.Fprintf(a.stderr, "warning: %s\n", d)
			continue
		}
		fmt.Fprintf(a.stderr, "warning: damaged restore point %s left out (run holdfast verify): %v\n", d.ID, d.Err)
	}
}
