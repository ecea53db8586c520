package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/spf13/cobra"
)

type forgetOptions struct {
	policy repo.Policy
	vm     string
	dryRun bool
}

func newForgetCommand(a *app) *cobra.Command {
	var o forgetOptions
	c := &cobra.Command{
		Use:   "forget",
		Short: "Remove restore points by a GFS retention policy (per VM)",
		Long: `Keep the newest --keep-last points and the newest point of each of the last
--keep-daily days, --keep-weekly weeks, --keep-monthly months and --keep-yearly
years, per VM; remove the others. Chunks are freed by 'holdfast gc'.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runForget(cmd, a, o)
		},
	}
	f := c.Flags()
	f.IntVar(&o.policy.Last, "keep-last", 0, "keep the newest N points")
	f.IntVar(&o.policy.Daily, "keep-daily", 0, "keep the newest point of each of the last N days")
	f.IntVar(&o.policy.Weekly, "keep-weekly", 0, "keep the newest point of each of the last N weeks")
	f.IntVar(&o.policy.Monthly, "keep-monthly", 0, "keep the newest point of each of the last N months")
	f.IntVar(&o.policy.Yearly, "keep-yearly", 0, "keep the newest point of each of the last N years")
	f.StringVar(&o.vm, "vm", "", "only this VM's points")
	f.BoolVar(&o.dryRun, "dry-run", false, "only show what would be removed")
	return c
}

func runForget(cmd *cobra.Command, a *app, o forgetOptions) error {
	if o.policy.Empty() {
		return usageError{errors.New("give at least one --keep-* option; forget never removes every point")}
	}
	ctx := cmd.Context()
	r, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	ms, damaged, err := r.ScanPoints(ctx)
	if err != nil {
		return err
	}
	warnDamagedPoints(a, damaged)
	holds, err := r.Holds(ctx)
	if err != nil {
		return err
	}
	held := map[string][]string{}
	for _, h := range holds {
		held[h.Point] = append(held[h.Point], h.String())
	}
	if o.vm != "" {
		var sel []*repo.Manifest
		for _, m := range ms {
			if m.VM == o.vm {
				sel = append(sel, m)
			}
		}
		ms = sel
	}
	removed, kept := 0, 0
	for _, d := range repo.ApplyPolicy(ms, o.policy, time.Local) {
		m := d.Point
		when := m.Time.Local().Format("2006-01-02 15:04:05")
		if d.Keep {
			fmt.Fprintf(a.stdout, "keep   %s %s %s (%s)\n", m.ID, m.VM, when, d)
			continue
		}
		if hs := held[m.ID]; len(hs) > 0 {
			kept++
			fmt.Fprintf(a.stdout, "keep   %s %s %s (%s)\n", m.ID, m.VM, when, strings.Join(hs, "; "))
			continue
		}
		verb := "remove"
		if o.dryRun {
			verb = "would remove"
		} else if err := r.RemovePoint(ctx, m); errors.Is(err, repo.ErrPointHeld) {
			kept++ // held since the listing
			fmt.Fprintf(a.stdout, "keep   %s %s %s (%v)\n", m.ID, m.VM, when, err)
			continue
		} else if err != nil {
			return err
		}
		removed++
		fmt.Fprintf(a.stdout, "%s %s %s %s\n", verb, m.ID, m.VM, when)
	}
	if kept > 0 {
		fmt.Fprintf(a.stdout, "kept %d held point(s) the policy would remove; they go once released (holdfast holds list)\n", kept)
	}
	if !o.dryRun && removed > 0 {
		fmt.Fprintf(a.stdout, "removed %d point(s); run 'holdfast gc' to free their space\n", removed)
	}
	return nil
}
