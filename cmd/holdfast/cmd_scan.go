package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/publish"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/scan"
	"github.com/holdfast-backup/holdfast/internal/textsafe"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// scanFlags are the malware-scan options, one set for scan, restore
// --scan and instant-recovery start --scan.
type scanFlags struct {
	scan        bool // restore, instant-recovery: scan before
	engine      string
	clamavDB    string
	yaraRules   string
	onInfection string // restore, instant-recovery: stop or continue
	user        string // the account the engine runs as
}

// add registers the flags; gate adds --scan and --on-infection (for the
// commands that scan before they do something else).
func (o *scanFlags) add(f *pflag.FlagSet, gate bool) {
	if gate {
		f.BoolVar(&o.scan, "scan", false, "scan the point for malware first (secure restore); an infected point is refused")
		f.StringVar(&o.onInfection, "on-infection", "stop", "with --scan, when the point is infected: stop (refuse it) or continue (warn and go on); a point not (fully) scanned is always refused")
	}
	f.StringVar(&o.engine, "engine", scan.ClamScan, "malware scan engine: clamscan or yara")
	f.StringVar(&o.clamavDB, "clamav-db", scan.DefaultClamAVDB, "clamscan: signature database directory (or file)")
	f.StringVar(&o.yaraRules, "yara-rules", "", "yara: rules file (required with --engine yara)")
	f.StringVar(&o.user, "scan-user", "", "account the engine runs as, with read access to every file and no other privilege (default clamav, else nobody; root keeps root)")
}

// engine checks the flags and the engine (program, database) before
// anything is published: a usage error for bad flags, ErrNotScanned for
// an engine that cannot run.
func (o *scanFlags) newEngine(ctx context.Context, a *app) (*scan.Engine, error) {
	if o.engine != scan.ClamScan && o.engine != scan.Yara {
		return nil, usageError{fmt.Errorf("--engine %q: clamscan or yara", o.engine)}
	}
	if o.onInfection != "" && o.onInfection != "stop" && o.onInfection != "continue" {
		return nil, usageError{fmt.Errorf("--on-infection %q: stop or continue", o.onInfection)}
	}
	if o.engine == scan.Yara && o.yaraRules == "" {
		return nil, usageError{errors.New("--engine yara needs --yara-rules FILE")}
	}
	return scan.New(ctx, scan.Options{Engine: o.engine, ClamAVDB: o.clamavDB, YaraRules: o.yaraRules, User: o.user, Clock: a.clock})
}

func newScanCommand(a *app) *cobra.Command {
	var o scanFlags
	var asJSON, findClean bool
	c := &cobra.Command{
		Use:   "scan POINT | --find-clean VM [--engine clamscan|yara] [--clamav-db DIR] [--yara-rules FILE] [--json]",
		Short: "Scan a restore point for malware, or find a VM's newest clean point",
		Long: `Scan restore point POINT (an ID, a unique ID prefix, "latest" or "VM:latest")
for malware: publish it read-only (as 'holdfast publish', root and FUSE needed),
run the engine over every mounted guest filesystem, unpublish it (also on
an error or Ctrl-C), record the result on the point ('holdfast points' shows
it in the SCAN column) and print the findings: the filesystem, the file's
path inside the guest filesystem (escaped) and the signature.

Engines: clamscan with the signature database --clamav-db (a directory or
a file, e.g. made by 'sigtool --md5 FILE > test.hdb'), or yara with the
rules file --yara-rules. Exit 0 when clean, 1 when something is found,
7 when the scan could not run (engine or database missing, engine error,
nothing mounted): a point that was not scanned is never called clean.

--find-clean VM finds the VM's newest point with no finding. It assumes an
infection stays once present: it checks the newest point, and if that is
infected, binary-searches the older ones (at most 1 + log2(points) scans),
reusing results recorded by the same engine, version and database.

The point is published as a session of 'holdfast publish' (recorded in
/run/holdfast/publish): a scan killed with SIGKILL leaves it behind, and
'holdfast publish cleanup' removes it.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if findClean {
				return runFindClean(cmd.Context(), a, o, args[0], asJSON)
			}
			return runScan(cmd.Context(), a, o, args[0], asJSON)
		},
	}
	o.add(c.Flags(), false)
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.Flags().BoolVar(&findClean, "find-clean", false, "the argument is a VM: find its newest clean point")
	return c
}

// scanJSON is the --json output of scan.
type scanJSON struct {
	Point         string         `json:"point"`
	VM            string         `json:"vm"`
	Time          time.Time      `json:"time"`
	Engine        string         `json:"engine"`
	EngineVersion string         `json:"engine_version"`
	Database      string         `json:"database"`
	Result        string         `json:"result"`
	FindingsCount int            `json:"findings_count"`
	Findings      []scan.Finding `json:"findings"`
	Filesystems   []string       `json:"filesystems"`
	Skipped       []string       `json:"not_mounted,omitempty"`
	Error         string         `json:"error,omitempty"`
	Reused        bool           `json:"reused,omitempty"`
	Duration      float64        `json:"duration_seconds"`
}

func newScanJSON(m *repo.Manifest, r scan.Report) scanJSON {
	j := scanJSON{Point: m.ID, VM: m.VM, Time: m.Time, Engine: r.Engine, EngineVersion: r.EngineVersion, Database: r.Database,
		Result: r.Result, FindingsCount: r.Count, Findings: r.Findings, Filesystems: r.Filesystems, Skipped: r.Skipped, Error: r.Error,
		Duration: r.Duration.Seconds()}
	if j.Findings == nil {
		j.Findings = []scan.Finding{}
	}
	if j.Filesystems == nil {
		j.Filesystems = []string{}
	}
	return j
}

// scanChecker is a checker that publishes points of r in this process
// and records results on them.
func (a *app) scanChecker(r *repo.Repository, eng *scan.Engine) *scan.Checker {
	return &scan.Checker{Engine: eng, Mount: scan.Published(publish.Options{Store: r, Logger: a.logger()}), Records: r}
}

func runScan(ctx context.Context, a *app, o scanFlags, ref string, asJSON bool) error {
	eng, err := o.newEngine(ctx, a)
	if err != nil {
		return err
	}
	r, m, err := a.openPoint(ctx, ref)
	if err != nil {
		return err
	}
	defer r.Close()
	rep, err := a.scanChecker(r, eng).ScanPoint(ctx, m)
	if rep.Result == "" || ctx.Err() != nil {
		return err // interrupted, or nothing scanned
	}
	// The scan ran: print it even when recording it or unpublishing failed (err).
	if asJSON {
		if perr := printJSON(a.stdout, mustJSON(newScanJSON(m, rep))); perr != nil {
			return perr
		}
	} else if perr := printScan(a.stdout, a.stderr, m, rep); perr != nil {
		return perr
	}
	return errors.Join(rep.Err(), err)
}

// printScan prints a report to w: the findings as a table, then one
// line; warnings go to warn.
func printScan(w, warn io.Writer, m *repo.Manifest, rep scan.Report) error {
	if len(rep.Findings) > 0 {
		rows := make([][]string, 0, len(rep.Findings))
		for _, f := range rep.Findings {
			rows = append(rows, []string{textsafe.Escape(f.Filesystem), textsafe.Escape(f.Path), textsafe.Escape(f.Signature)})
		}
		if err := table(w, []string{"FILESYSTEM", "PATH", "SIGNATURE"}, rows); err != nil {
			return err
		}
	}
	what := rep.Result
	switch rep.Result {
	case repo.ScanInfected:
		what = fmt.Sprintf("infected: %d finding(s)", rep.Count)
		if rep.Count > len(rep.Findings) {
			what += fmt.Sprintf(" (first %d shown)", len(rep.Findings))
		}
	case repo.ScanFailed:
		what = "NOT SCANNED: " + rep.Error
	}
	for _, fs := range rep.Skipped {
		fmt.Fprintf(warn, "warning: filesystem %s of %s not mounted, so not scanned\n", textsafe.Escape(fs), m.ID)
	}
	_, err := fmt.Fprintf(w, "%s of %s (%s, %s): %s — %s (%s), %d filesystem(s) in %s\n", rep.Engine, m.ID, m.VM,
		m.Time.Local().Format("2006-01-02 15:04:05"), what, rep.EngineVersion, shortDigest(rep.Database), len(rep.Filesystems),
		rep.Duration.Round(time.Millisecond))
	return err
}

func shortDigest(d string) string { return d[:min(len(d), len("sha256:")+12)] }

// findCleanJSON is the --json output of scan --find-clean.
type findCleanJSON struct {
	VM      string           `json:"vm"`
	Point   *string          `json:"point"` // null: no clean point
	Time    *time.Time       `json:"time,omitempty"`
	Checked []findCleanCheck `json:"checked"`
}

type findCleanCheck struct {
	Point  string `json:"point"`
	Result string `json:"result"`
	Reused bool   `json:"reused"`
}

// ErrNoCleanPoint means every point of the VM that was checked is
// infected.
var errNoCleanPoint = errors.New("no clean restore point")

func runFindClean(ctx context.Context, a *app, o scanFlags, vm string, asJSON bool) error {
	eng, err := o.newEngine(ctx, a)
	if err != nil {
		return err
	}
	r, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	all, err := r.ListPoints(ctx)
	if err != nil {
		return err
	}
	var ps []*repo.Manifest
	for _, m := range all {
		if m.VM == vm {
			ps = append(ps, m)
		}
	}
	if len(ps) == 0 {
		return fmt.Errorf("VM %q: %w", vm, repo.ErrPointNotFound)
	}
	c := a.scanChecker(r, eng)
	out := findCleanJSON{VM: vm, Checked: []findCleanCheck{}}
	check := func(ctx context.Context, m *repo.Manifest) (string, error) {
		_, reused, err := c.Recorded(ctx, m)
		if err != nil {
			return "", err
		}
		res, err := c.Check(ctx, m)
		if err != nil {
			return "", err
		}
		out.Checked = append(out.Checked, findCleanCheck{Point: m.ID, Result: res, Reused: reused})
		if !asJSON {
			how := "scanned"
			if reused {
				how = "recorded"
			}
			fmt.Fprintf(a.stdout, "%s %s: %s (%s)\n", m.ID, m.Time.Local().Format("2006-01-02 15:04:05"), res, how)
		}
		return res, nil
	}
	found, err := scan.FindClean(ctx, ps, check)
	if err != nil {
		return err
	}
	if found != nil {
		out.Point, out.Time = &found.ID, &found.Time
	}
	if asJSON {
		if err := printJSON(a.stdout, mustJSON(out)); err != nil {
			return err
		}
	} else if found != nil {
		fmt.Fprintf(a.stdout, "newest clean point of %s: %s (%s), %d of %d point(s) checked\n", vm, found.ID,
			found.Time.Local().Format("2006-01-02 15:04:05"), len(out.Checked), len(ps))
	}
	if found == nil {
		return fmt.Errorf("VM %s: %w: its oldest point is infected too (%d point(s)): %w", vm, errNoCleanPoint, len(ps), scan.ErrInfected)
	}
	return nil
}

// scanBefore is secure restore: with --scan, scan the point first and
// refuse it when infected (unless --on-infection continue) or when it
// could not be scanned. Without --scan it does nothing.
func (a *app) scanBefore(ctx context.Context, r *repo.Repository, o scanFlags, m *repo.Manifest) error {
	if !o.scan {
		return nil
	}
	eng, err := o.newEngine(ctx, a)
	if err != nil {
		return err
	}
	rep, err := a.scanChecker(r, eng).ScanPoint(ctx, m)
	if rep.Result == "" || ctx.Err() != nil {
		return err // interrupted, or nothing scanned
	}
	if err != nil { // the scan's answer stands; what failed after it is a warning
		fmt.Fprintf(a.stderr, "warning: %v\n", err)
	}
	// On stderr: stdout is the restore's (or session's) own output, JSON with --json.
	if err := printScan(a.stderr, a.stderr, m, rep); err != nil {
		return err
	}
	switch {
	case rep.Result == repo.ScanClean:
		return nil
	case rep.Result == repo.ScanInfected && o.onInfection == "continue":
		fmt.Fprintf(a.stderr, "warning: point %s is infected (%d finding(s)); going on as --on-infection continue says\n", m.ID, rep.Count)
		return nil
	case rep.Result == repo.ScanInfected:
		return fmt.Errorf("point %s refused: %w (--on-infection continue uses it all the same; holdfast scan --find-clean %s finds a clean one)",
			m.ID, rep.Err(), m.VM)
	}
	return notScannedRefusal(m, rep)
}

// notScannedRefusal is the error of a secure restore whose point could
// not be scanned (or not fully): refused whatever --on-infection says,
// with what to do about it.
func notScannedRefusal(m *repo.Manifest, rep scan.Report) error {
	hint := "fix what kept the engine from running, or restore without --scan"
	if strings.Contains(rep.Error, "not fully scanned") {
		hint = "guest files were left unscanned, so the point is neither clean nor infected and --on-infection does not apply; " +
			"scan it where everything can be published (a volume group skipped because its name is in use: " +
			"on a mount host without a volume group of that name), or restore without --scan"
	}
	return fmt.Errorf("point %s refused: %w (%s)", m.ID, rep.Err(), hint)
}

// scanBeforeRef resolves ref, scans the point first (scanBefore) and
// returns its ID, so that what runs next uses the point that was scanned
// (not a newer "latest").
func (a *app) scanBeforeRef(ctx context.Context, o scanFlags, ref string) (string, error) {
	r, m, err := a.openPoint(ctx, ref)
	if err != nil {
		return "", err
	}
	defer r.Close()
	return m.ID, a.scanBefore(ctx, r, o, m)
}
