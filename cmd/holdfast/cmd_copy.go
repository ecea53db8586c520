package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/password"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repocopy"
	"github.com/spf13/cobra"
)

// defaultVerifySample is how many of the chunks sent for each point copy
// fetches back from the target and opens before committing it.
const defaultVerifySample = 8

type copyFlags struct {
	from, to           string
	fromPass, toPass   string
	vm                 string
	points             []string
	workers, verifyOne int
	newerOnly, asJSON  bool
}

func newCopyCommand(a *app) *cobra.Command {
	var f copyFlags
	c := &cobra.Command{
		Use:   "copy --from REPO --to REPO [--vm VM] [--points REF,...]",
		Short: "Copy restore points to another repository (off-site copy), sending only the chunks it lacks",
		Long: `Copy restore points from one repository to another (a directory or an
s3:// URL each; the target must exist: holdfast repo init). Every point of
--vm (or of every VM), or the points --points names, that the target lacks
is copied chunk by chunk: chunks are re-encrypted for the target's keys and
only those it lacks are sent; each point is checked at the target and
committed last, so an interrupted copy leaves no partial point and a rerun
sends only what is missing. Passwords: --from-password-file and
--to-password-file, else the usual sources (--password-file,
--password-command, HOLDFAST_PASSWORD…) for both.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runCopy(cmd.Context(), a, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.from, "from", "", "the source repository: a directory or s3://HOST[:PORT]/BUCKET[/PREFIX]")
	fl.StringVar(&f.to, "to", "", "the target repository (initialised with repo init)")
	fl.StringVar(&f.fromPass, "from-password-file", "", "read the source repository's password from this file")
	fl.StringVar(&f.toPass, "to-password-file", "", "read the target repository's password from this file")
	fl.StringVar(&f.vm, "vm", "", "copy only this VM's points")
	fl.StringSliceVar(&f.points, "points", nil, "copy only these points: IDs, ID prefixes, latest, VM:latest, VM:latest~N (comma-separated)")
	fl.BoolVar(&f.newerOnly, "newer-only", false, "per VM, copy only points newer than the newest the target holds (what retention removed there is not copied again)")
	fl.IntVar(&f.workers, "workers", repocopy.DefaultWorkers, "chunks copied at once")
	fl.IntVar(&f.verifyOne, "verify-sample", defaultVerifySample, "chunks sent per point fetched back from the target and checked before committing")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	return c
}

func runCopy(ctx context.Context, a *app, f copyFlags) error {
	switch {
	case a.repoDir != "":
		return usageError{errors.New("copy takes --from and --to, not --repo")}
	case f.from == "" || f.to == "":
		return usageError{errors.New("copy needs --from REPO and --to REPO")}
	case f.workers < 1 || f.workers > 64:
		return usageError{fmt.Errorf("--workers %d: give 1 to 64", f.workers)}
	case f.verifyOne < 0:
		return usageError{errors.New("--verify-sample must not be negative")}
	}
	src, err := a.openLocation(ctx, f.from, a.copyPassword(f.fromPass))
	if errors.Is(err, repo.ErrNotInitialized) {
		return fmt.Errorf("source: %w", err)
	}
	if err != nil {
		return fmt.Errorf("source %s: %w", f.from, err)
	}
	defer src.Close()
	dst, err := a.openLocation(ctx, f.to, a.copyPassword(f.toPass))
	if errors.Is(err, repo.ErrNotInitialized) {
		return fmt.Errorf("target: %w (create it first: holdfast repo init --repo %s)", err, f.to)
	}
	if err != nil {
		return fmt.Errorf("target %s: %w", f.to, err)
	}
	defer dst.Close()
	res, err := repocopy.Copy(ctx, src, dst, repocopy.Options{VM: f.vm, Points: f.points, NewerOnly: f.newerOnly, Workers: f.workers,
		VerifySample: f.verifyOne, Clock: a.clock, Logger: a.logger()})
	if err != nil {
		if len(res.Copied) > 0 {
			fmt.Fprintf(a.stderr, "copied %d restore point(s) before the error\n", len(res.Copied))
		}
		return err
	}
	return printCopy(a, res, f.asJSON)
}

// copyPassword reads one side's password: its file flag, else the usual
// sources.
func (a *app) copyPassword(file string) func(context.Context) ([]byte, error) {
	if file == "" {
		return func(ctx context.Context) ([]byte, error) { return a.password(ctx, false) }
	}
	return func(ctx context.Context) ([]byte, error) {
		pw, err := password.Sources{File: file}.Read(ctx)
		if errors.Is(err, password.ErrUsage) {
			return nil, usageError{err}
		}
		return pw, err
	}
}

type copiedPoint struct {
	ID   string    `json:"id"`
	VM   string    `json:"vm"`
	Time time.Time `json:"time"`
}

func printCopy(a *app, res repocopy.Result, asJSON bool) error {
	copied := make([]copiedPoint, 0, len(res.Copied))
	for _, m := range res.Copied {
		copied = append(copied, copiedPoint{ID: m.ID, VM: m.VM, Time: m.Time})
	}
	if res.Skipped == nil {
		res.Skipped = []string{}
	}
	if asJSON {
		return printJSON(a.stdout, mustJSON(struct {
			Copied  []copiedPoint `json:"copied"`
			Skipped []string      `json:"skipped"`
			repocopy.Stats
		}{copied, res.Skipped, res.Stats}))
	}
	for _, p := range copied {
		fmt.Fprintf(a.stdout, "copied %s  %s  %s\n", p.ID, p.VM, p.Time.Local().Format("2006-01-02 15:04:05"))
	}
	s := res.Stats
	fmt.Fprintf(a.stdout, "%d restore point(s) copied, %d already there; %d chunks sent (%s), %d already there; %s read\n",
		s.PointsCopied, s.PointsSkipped, s.ChunksSent, formatBytes(s.BytesSent), s.ChunksPresent, formatBytes(s.BytesRead))
	return nil
}
