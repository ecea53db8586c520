package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/password"
	"github.com/spf13/pflag"
)

// copyJobFlags are the flags of `job create` and `job edit` for a copy job
// (jobdef.Copy) and the --after shortcut of every job's schedule.
type copyJobFlags struct {
	to, toPass, after string
	vms               []string
	newerOnly         bool
}

func (f *copyJobFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.to, "to-repository", "", "copy job: the target repository (agent name); --repository is the source")
	fs.StringArrayVar(&f.vms, "vms", nil, "copy job: copy only the points of VMs matching this glob, e.g. 'web-*' (repeat for more; default: every VM)")
	fs.BoolVar(&f.newerOnly, "newer-only", false, "copy job: per VM, copy only points newer than the newest the target holds (what retention removed there is not copied again)")
	fs.StringVar(&f.toPass, "to-password-file", "", "copy job: the target repository's password, sealed by the server (default: the job's password)")
	fs.StringVar(&f.after, "after", "", "run the job each time job JOB ends (the schedule 'after JOB')")
}

// apply sets the copy fields of the flags that changed; reading
// --to-password-file puts the password inline in the definition, which
// the server seals.
func (f *copyJobFlags) apply(ctx context.Context, def *jobdef.Definition, changed func(string) bool) error {
	if !changed("to-repository") && !changed("vms") && !changed("newer-only") && !changed("to-password-file") {
		return nil
	}
	c := def.Copy
	if c == nil {
		c = &jobdef.Copy{}
		def.Copy = c
	}
	if changed("to-repository") {
		c.ToRepository = f.to
	}
	if changed("vms") {
		c.VMs = f.vms
	}
	if changed("newer-only") {
		c.NewerOnly = f.newerOnly
	}
	if changed("to-password-file") {
		pw, err := password.Sources{File: f.toPass}.Read(ctx)
		if err != nil {
			return usageError{fmt.Errorf("--to-password-file: %w", err)}
		}
		c.ToPassword, c.ToPasswordSecret = string(pw), "" // the server seals the new one
	}
	return nil
}

// schedule is the schedule the flags give: --after JOB is "after JOB".
func (f *copyJobFlags) schedule(schedule string, changed func(string) bool) (string, error) {
	if !changed("after") {
		return schedule, nil
	}
	if changed("schedule") {
		return "", usageError{errors.New("give --schedule or --after, not both")}
	}
	if strings.TrimSpace(f.after) == "" {
		return "", usageError{errors.New("--after needs a job name")}
	}
	return "after " + f.after, nil
}

// copyRows are job show's lines for a copy job.
func copyRows(d jobdef.Definition) [][]string {
	c := d.Copy
	if c == nil {
		return nil
	}
	vms := "every VM"
	if len(c.VMs) > 0 {
		vms = strings.Join(c.VMs, " ")
	}
	rows := [][]string{{"Copies to:", c.ToRepository}, {"Copies VMs:", vms}}
	if c.NewerOnly {
		rows = append(rows, []string{"Newer only:", "yes"})
	}
	pw := "the job's"
	if c.ToPasswordSecret != "" {
		pw = "sealed on the server (" + c.ToPasswordSecret + ")"
	}
	return append(rows, []string{"Target password:", pw})
}

// copyWhat is job list's VMS column for a copy job: "→ TARGET (globs)".
func copyWhat(c *jobdef.Copy) string {
	s := "→ " + c.ToRepository
	if len(c.VMs) > 0 {
		s += " (" + strings.Join(c.VMs, " ") + ")"
	}
	return s
}
