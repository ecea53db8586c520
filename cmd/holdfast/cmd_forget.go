package main

import (
	"context"
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
	asJSON bool
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
	f.BoolVar(&o.asJSON, "json", false, "print the result as JSON")
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
	out := forgetJSON{DryRun: o.dryRun, Points: []forgetPoint{}}
	for _, d := range repo.ApplyPolicy(ms, o.policy, time.Local) {
		p, err := forgetOne(ctx, r, d, held[d.Point.ID], o.dryRun, &out)
		if err != nil {
			return err
		}
		out.Points = append(out.Points, p)
		if !o.asJSON {
			a.printForgotten(p, o.dryRun)
		}
	}
	if o.asJSON {
		if err := printJSON(a.stdout, mustJSON(out)); err != nil {
			return err
		}
		return lockedPointsError(out.KeptLocked)
	}
	if out.KeptHeld > 0 {
		fmt.Fprintf(a.stdout, "kept %d held point(s) the policy would remove; they go once released (holdfast holds list)\n", out.KeptHeld)
	}
	if !o.dryRun && out.Removed > 0 {
		fmt.Fprintf(a.stdout, "removed %d point(s); run 'holdfast gc' to free their space\n", out.Removed)
	}
	return lockedPointsError(out.KeptLocked)
}

// lockedPointsError refuses, after the others were handled, the points
// the policy would remove that Object Lock still protects.
func lockedPointsError(locked []forgetPoint) error {
	if len(locked) == 0 {
		return nil
	}
	parts := make([]string, len(locked))
	for i, p := range locked {
		parts[i] = p.ID + " until " + p.LockedUntil.Local().Format(time.RFC3339)
	}
	return fmt.Errorf("kept %d point(s) the policy would remove: %w: %s", len(locked), repo.ErrPointLocked, strings.Join(parts, ", "))
}

// forgetOne applies one decision of the policy: a point to remove is kept
// when held or under Object Lock, else removed (unless dry).
func forgetOne(ctx context.Context, r *repo.Repository, d repo.Decision, holds []string, dryRun bool, out *forgetJSON) (forgetPoint, error) {
	m := d.Point
	p := forgetPoint{ID: m.ID, VM: m.VM, Time: m.Time, Action: "keep", Reasons: []string{d.String()}}
	if d.Keep {
		return p, nil
	}
	p.Reasons = holds
	if len(p.Reasons) == 0 {
		var err error
		if p.LockedUntil, err = r.PointLockedUntil(ctx, m); err != nil {
			return p, err
		}
	}
	if len(p.Reasons) == 0 && p.LockedUntil.IsZero() {
		p.Action = "remove"
		if !dryRun {
			if err := r.RemovePoint(ctx, m); errors.Is(err, repo.ErrPointHeld) || errors.Is(err, repo.ErrPointLocked) {
				p.Action, p.Reasons = "keep", []string{err.Error()} // held since the listing
			} else if err != nil {
				return p, err
			}
		}
	}
	switch {
	case !p.LockedUntil.IsZero():
		p.Reasons = []string{"under Object Lock until " + p.LockedUntil.Local().Format(time.RFC3339)}
		out.KeptLocked = append(out.KeptLocked, p)
	case p.Action == "keep":
		out.KeptHeld++
	default:
		out.Removed++
	}
	return p, nil
}

// forgetJSON is the --json output of forget: every point the policy
// looked at, kept (with the reasons: the policy's rules or the holds) or
// removed (with --dry-run: would be removed).
type forgetJSON struct {
	DryRun   bool          `json:"dry_run"`
	Points   []forgetPoint `json:"points"`
	Removed  int           `json:"removed"`
	KeptHeld int           `json:"kept_held"`
	// KeptLocked are the points the policy would remove that Object Lock
	// protects (forget then exits with the "locked" code).
	KeptLocked []forgetPoint `json:"kept_locked,omitempty"`
}

type forgetPoint struct {
	ID      string    `json:"id"`
	VM      string    `json:"vm"`
	Time    time.Time `json:"time"`
	Action  string    `json:"action"` // keep or remove
	Reasons []string  `json:"reasons,omitempty"`
	// LockedUntil is when the point's Object Lock ends (kept until then).
	LockedUntil time.Time `json:"locked_until,omitzero"`
}

// printForgotten prints one line of forget's text output.
func (a *app) printForgotten(p forgetPoint, dryRun bool) {
	when := p.Time.Local().Format("2006-01-02 15:04:05")
	switch {
	case p.Action == "keep":
		fmt.Fprintf(a.stdout, "keep   %s %s %s (%s)\n", p.ID, p.VM, when, strings.Join(p.Reasons, "; "))
	case dryRun:
		fmt.Fprintf(a.stdout, "would remove %s %s %s\n", p.ID, p.VM, when)
	default:
		fmt.Fprintf(a.stdout, "remove %s %s %s\n", p.ID, p.VM, when)
	}
}
