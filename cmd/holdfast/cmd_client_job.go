package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/spf13/cobra"
)

func newJobCommand(a *app) *cobra.Command {
	o := &clientOptions{}
	c := &cobra.Command{Use: "job", Short: "Backup jobs on the server: create, list, show, edit, delete, run", Args: noArgs}
	addClientFlags(c, o)
	c.AddCommand(newJobCreate(a, o), newJobList(a, o), newJobShow(a, o), newJobEdit(a, o),
		newJobDelete(a, o), newJobToggle(a, o, true), newJobToggle(a, o, false), newJobRun(a, o))
	return c
}

func jobPath(name string, suffix string) string {
	return "/api/v1/jobs/" + url.PathEscape(name) + suffix
}

func newJobCreate(a *app, o *clientOptions) *cobra.Command {
	var f jobFlags
	c := &cobra.Command{
		Use:   "create NAME (--vm NAME=DISK … | --vms-from SOURCE[=GLOB] | --kind maintenance --gc --verify [--read-data 10%] | --kind copy --to-repository R2 [--vms GLOB]) --repository R [--password-file PW] [--schedule CRON | --after JOB]",
		Short: "Create a backup, maintenance or copy job (the password is sealed by the server, never shown)",
		Long: `Create a backup or maintenance job on the server. --password-file FILE (or
--password-command CMD) gives the repository password; it is sent once in the
request, sealed by the server and never printed (the HOLDFAST_PASSWORD*
variables are not used here).

The definition sent is {"vms": [{"name", "disks"}], "repository",
"retention": {"keep_last"}, "chunk_size", "transport", "format",
"disk_formats", "follow_backing", …} (internal/jobdef); it is checked before
it is sent, and again by the server. Compression is the repository's
(holdfast repo init --compression), not a job's.

File disks are read with the format --format gives (FORMAT for every disk,
DISK=FORMAT for one); a disk without one is detected at its first backup and
the server records the result ("recorded_formats", shown by job show), so
later runs read it the same way. A detected image never reads other files
(qcow2 backing files, VMDK extent files): give --format vmdk for VMDK
descriptors, and --format qcow2 --follow-backing for qcow2 images whose
backing chain the host made.

Retention is the GFS policy of 'holdfast forget': --retention-last,
--retention-daily, --retention-weekly, --retention-monthly and
--retention-yearly keep, per VM, the newest points and the newest point of
each of the last N days, weeks, months and years; the server applies it
after each successful run (a held point is kept until released).

A maintenance job (--kind maintenance) runs on the repository's own agent:
--gc deletes unreferenced chunks (--gc-grace, as 'holdfast gc'), --verify
checks the repository (as 'holdfast verify'), and --read-data 10% also reads
and re-hashes a tenth of the chunks per run, a different tenth each run, so
that every chunk is read over ten runs. Give it a --schedule instead of a
cron entry for 'holdfast gc' on the repository host.

A copy job (--kind copy) copies the restore points of --repository (the
source) to --to-repository (another registered repository agent), sending only
the chunks the target lacks (as 'holdfast copy'); the server runs it, holding
both passwords sealed (--to-password-file, default the job's password). --vms
GLOB limits it to matching VMs, --newer-only skips points no newer than the
target's newest of their VM, and --retention-* apply to the target's points
of those VMs after each run. --after JOB runs it each time the backup job JOB
ends (the schedule 'after JOB').

A schedule missed while the server was down runs once when it starts;
--missed skip waits for the next firing instead.`,
		Args: exactArgs(1),
	}
	f.register(c.Flags())
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(f.vms) == 0 && len(f.vmsFrom) == 0 && f.kind != jobdef.KindMaintenance && f.kind != jobdef.KindCopy {
			return usageError{errors.New("job create needs at least one --vm NAME=DISK or --vms-from SOURCE[=GLOB]")}
		}
		var def jobdef.Definition
		changed := func(n string) bool { return cmd.Flags().Changed(n) }
		if err := f.copy.apply(cmd.Context(), &def, changed); err != nil {
			return err
		}
		if err := f.apply(&def, f.kind, changed); err != nil {
			return err
		}
		var err error
		if f.schedule, err = f.copy.schedule(f.schedule, changed); err != nil {
			return err
		}
		if err := jobdef.ValidateSchedule(f.schedule); err != nil {
			return usageError{fmt.Errorf("--schedule: %w", err)}
		}
		pw, err := a.jobPassword(cmd.Context())
		if err != nil {
			return err
		}
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		req := apitypes.JobRequest{Name: args[0], Kind: f.kind, Definition: &def, Schedule: f.schedule, Password: pw}
		var j apitypes.Job
		if err := cl.call(cmd.Context(), "POST", "/api/v1/jobs", "create jobs", req, &j); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "created job %s\n", j.Name)
		return err
	}
	return c
}

func newJobEdit(a *app, o *clientOptions) *cobra.Command {
	var f jobFlags
	var rename string
	c := &cobra.Command{
		Use:   "edit NAME [--vm …] [--repository R] [--schedule CRON] [--password-file PW] …",
		Short: "Change a job: only the flags given change (--vm replaces the VM list)",
		Args:  exactArgs(1),
	}
	f.register(c.Flags())
	c.Flags().StringVar(&rename, "rename", "", "new name for the job")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if _, err := parseVMs(f.vms); err != nil {
			return err // before anything is sent
		}
		pw, err := a.jobPassword(cmd.Context())
		if err != nil {
			return err
		}
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		var old apitypes.Job
		if err := cl.call(cmd.Context(), "GET", jobPath(args[0], ""), "read jobs", nil, &old); err != nil {
			return err
		}
		def, err := jobdef.Parse(old.Definition)
		if err != nil {
			return err
		}
		changed := func(n string) bool { return cmd.Flags().Changed(n) }
		kind := old.Kind
		if changed("kind") {
			kind = f.kind
		}
		if err := f.copy.apply(cmd.Context(), &def, changed); err != nil {
			return err
		}
		if err := f.apply(&def, kind, changed); err != nil {
			return err
		}
		req := apitypes.JobRequest{Name: rename, Kind: kind, Definition: &def, Schedule: old.Schedule, Password: pw}
		if f.schedule, err = f.copy.schedule(f.schedule, changed); err != nil {
			return err
		}
		if changed("schedule") || changed("after") {
			if err := jobdef.ValidateSchedule(f.schedule); err != nil {
				return usageError{fmt.Errorf("--schedule: %w", err)}
			}
			req.Schedule = f.schedule
		}
		if pw != "" {
			def.PasswordSecret = "" // the server seals the new one
		}
		var j apitypes.Job
		if err := cl.call(cmd.Context(), "PUT", jobPath(args[0], ""), "edit jobs", req, &j); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "updated job %s\n", j.Name)
		return err
	}
	return c
}

func newJobList(a *app, o *clientOptions) *cobra.Command {
	return newListCommand(a, o, listSpec[apitypes.Job]{
		short: "List jobs", path: "/api/v1/jobs", what: "list jobs",
		header: []string{"NAME", "KIND", "ENABLED", "SCHEDULE", "REPOSITORY", "VMS", "NEXT RUN", "LAST RUN"},
		row: func(j apitypes.Job) []string {
			d, _ := jobdef.Parse(j.Definition)
			enabled := "no"
			if j.Enabled {
				enabled = "yes"
			}
			what := vmList(d)
			if d.Maintenance != nil {
				what = d.Maintenance.String()
			}
			if d.Copy != nil {
				what = copyWhat(d.Copy)
			}
			return []string{j.Name, orDash(j.Kind), enabled, orDash(j.Schedule), orDash(d.Repository), orDash(what),
				runRows(j)[0][1], lastRun(j)}
		},
	})
}

func newJobShow(a *app, o *clientOptions) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "show NAME", Short: "Show a job", Args: exactArgs(1)}
	c.Flags().BoolVar(&asJSON, "json", false, "print the API's JSON")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := cl.call(cmd.Context(), "GET", jobPath(args[0], ""), "read jobs", nil, &raw); err != nil {
			return err
		}
		if asJSON {
			return printJSON(a.stdout, raw)
		}
		var j apitypes.Job
		if err := json.Unmarshal(raw, &j); err != nil {
			return err
		}
		return a.showJob(j)
	}
	return c
}

func newJobDelete(a *app, o *clientOptions) *cobra.Command {
	return &cobra.Command{
		Use: "delete NAME", Short: "Delete a job (and its sealed password)", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.jobAction(cmd.Context(), o, "DELETE", jobPath(args[0], ""), "delete jobs", "deleted job "+args[0])
		},
	}
}

func newJobToggle(a *app, o *clientOptions, on bool) *cobra.Command {
	verb, done := "disable", "disabled"
	if on {
		verb, done = "enable", "enabled"
	}
	return &cobra.Command{
		Use: verb + " NAME", Short: map[bool]string{true: "Enable a job's schedule", false: "Disable a job's schedule"}[on],
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.jobAction(cmd.Context(), o, "POST", jobPath(args[0], "/"+verb), verb+" jobs", done+" job "+args[0])
		},
	}
}

// jobAction sends a request without a body and prints msg on success.
func (a *app) jobAction(ctx context.Context, o *clientOptions, method, path, what, msg string) error {
	cl, err := a.client(o)
	if err != nil {
		return err
	}
	if err := cl.call(ctx, method, path, what, nil, nil); err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, msg)
	return err
}

func newJobRun(a *app, o *clientOptions) *cobra.Command {
	var asJSON, wait bool
	c := &cobra.Command{Use: "run NAME [--wait] [--json]", Short: "Run a job now: the server queues a session", Args: exactArgs(1),
		Long: `Run a job now. Without --wait, print the queued session and return. With
--wait, follow the session until it ends and print its result (with --json the
result document: status, session, per-VM points and per-disk results, and the
bottleneck); the exit status is 0 for success or warning, 1 for failure.`}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON: the queued session, or with --wait the session's result")
	c.Flags().BoolVar(&wait, "wait", false, "wait for the session to finish and print its result")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := cl.call(cmd.Context(), "POST", jobPath(args[0], "/run"), "run jobs", nil, &raw); err != nil {
			return err
		}
		var se apitypes.Session
		if err := json.Unmarshal(raw, &se); err != nil {
			return err
		}
		if !wait {
			if asJSON {
				return printJSON(a.stdout, raw)
			}
			_, err = fmt.Fprintf(a.stdout, "session %d for job %s: %s\n", se.ID, args[0], se.State)
			return err
		}
		return a.waitSession(cmd.Context(), cl, se.ID, asJSON)
	}
	return c
}
