package scan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/textsafe"
)

// Engine names.
const (
	ClamScan = "clamscan"
	Yara     = "yara"
)

// DefaultClamAVDB is the ClamAV database directory when none is given
// (Debian's, where freshclam writes).
const DefaultClamAVDB = "/var/lib/clamav"

var (
	// ErrNotScanned means the scan could not run or did not complete: the
	// engine is missing, its database is missing, empty or does not load,
	// it exited with an error, nothing was mounted to scan. The point is
	// neither clean nor infected.
	ErrNotScanned = errors.New("not scanned")
	// ErrInfected means the scan found malware.
	ErrInfected = errors.New("malware found")
)

// Options choose and configure an engine.
type Options struct {
	Engine    string // ClamScan (default) or Yara
	ClamAVDB  string // clamscan -d: a database directory or file (default DefaultClamAVDB)
	YaraRules string // yara rules file (source), required for yara
	// Program is the engine's executable (default: the engine's name on
	// $PATH). Tests give a fake.
	Program string
	// User is the account the engine runs as when holdfast runs as root
	// (default: clamav when it exists, else nobody, else 65534:65534);
	// "root" keeps root. See Engine.sysProcAttr.
	User  string
	Clock clock.Clock
}

// Engine is a configured, checked engine: its program was found and its
// database hashed.
type Engine struct {
	name     string
	program  string
	db       string // absolute
	version  string
	database string              // "sha256:…" over the database
	cred     *syscall.Credential // the scan user; nil: run as holdfast runs
	setpriv  string              // setpriv(1), which drops root for the engine
	clock    clock.Clock
}

// New checks the engine's program and database and reads their identity.
// Anything missing is an error wrapping ErrNotScanned, found before
// anything is published.
func New(ctx context.Context, o Options) (*Engine, error) {
	e := &Engine{name: o.Engine, clock: clock.Or(o.Clock)}
	if e.name == "" {
		e.name = ClamScan
	}
	db := o.ClamAVDB
	switch e.name {
	case ClamScan:
		if db == "" {
			db = DefaultClamAVDB
		}
	case Yara:
		db = o.YaraRules
		if db == "" {
			return nil, fmt.Errorf("yara needs a rules file (--yara-rules): %w", ErrNotScanned)
		}
	default:
		return nil, fmt.Errorf("unknown scan engine %q (clamscan or yara)", e.name)
	}
	prog := o.Program
	if prog == "" {
		prog = e.name
	}
	p, err := exec.LookPath(prog)
	if err != nil {
		return nil, fmt.Errorf("scan engine %s: %w: %w", e.name, ErrNotScanned, err)
	}
	e.program = p
	if e.cred, err = engineUser(o.User); err != nil {
		return nil, fmt.Errorf("scan engine %s: %w: %w", e.name, ErrNotScanned, err)
	}
	if e.cred != nil {
		if e.setpriv, err = exec.LookPath("setpriv"); err != nil {
			return nil, fmt.Errorf("scan engine %s: %w: setpriv (util-linux) runs it unprivileged: %w", e.name, ErrNotScanned, err)
		}
	}
	if e.db, err = filepath.Abs(db); err != nil {
		return nil, err
	}
	if e.database, err = hashDatabase(e.db); err != nil {
		return nil, fmt.Errorf("%s database: %w: %w", e.name, ErrNotScanned, err)
	}
	if e.version, err = e.readVersion(ctx); err != nil {
		return nil, fmt.Errorf("scan engine %s: %w: %w", e.name, ErrNotScanned, err)
	}
	return e, nil
}

// Name, Version and Database identify the engine: scans with the same
// three give the same answer.
func (e *Engine) Name() string     { return e.name }
func (e *Engine) Version() string  { return e.version }
func (e *Engine) Database() string { return e.database }

func (e *Engine) readVersion(ctx context.Context) (string, error) {
	cmd := e.command(ctx, "", "--version") // as the scan user: it can run the program
	cmd.Stdin = nil
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w", e.program, err)
	}
	v := strings.TrimSpace(string(bytes.SplitN(out, []byte("\n"), 2)[0]))
	if e.name == ClamScan {
		v, _, _ = strings.Cut(v, "/") // "ClamAV 1.4.6/27000/date": the rest is the default database
		if v != "" {
			v += clamLimitsVersion
		}
	} else {
		v = "YARA " + v
	}
	if v == "" || len(v) > 200 {
		return "", fmt.Errorf("%s --version printed %q", e.program, v)
	}
	return v, nil
}

// hashDatabase returns "sha256:…" over a database file, or over every
// regular file directly in a directory (name, size, content; by name). A
// directory without files is an error: the engine would load nothing.
func hashDatabase(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	files := []string{path}
	if fi.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return "", err
		}
		files = files[:0]
		for _, de := range ents {
			if de.Type().IsRegular() {
				files = append(files, filepath.Join(path, de.Name()))
			}
		}
		if len(files) == 0 {
			return "", fmt.Errorf("%s holds no database files", path)
		}
		sort.Strings(files)
	}
	h := sha256.New()
	for _, f := range files {
		if err := hashFile(h, f); err != nil {
			return "", err
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(h io.Writer, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(name), fi.Size())
	_, err = io.Copy(h, f)
	return err
}

// Target is one mounted guest filesystem: its name (as publish names it,
// e.g. disk0-p1 or an LVM volume) and its host mount point.
type Target struct {
	Name string
	Root string
}

// Finding is one file an engine flagged. Path is relative to the guest
// filesystem's root, as the guest names it.
type Finding struct {
	Filesystem string `json:"filesystem"`
	Path       string `json:"path"`
	Signature  string `json:"signature"`
	Engine     string `json:"engine"`
}

// MaxFindings bounds the findings a report keeps; Report.Count counts
// every one.
const MaxFindings = 1000

// Report is the outcome of one scan.
type Report struct {
	Engine        string
	EngineVersion string
	Database      string
	Result        string // repo.ScanClean, repo.ScanInfected, repo.ScanFailed
	Findings      []Finding
	Count         int      // findings, including those not kept
	Error         string   // why a failed scan failed (engine's words, escaped)
	Filesystems   []string // scanned filesystems
	Skipped       []string // filesystems found but not mounted, so not scanned
	Started       time.Time
	Duration      time.Duration
}

// Err is nil for a clean report, wraps ErrInfected for an infected one
// and ErrNotScanned for a failed one.
func (r Report) Err() error {
	switch r.Result {
	case repo.ScanClean:
		return nil
	case repo.ScanInfected:
		return fmt.Errorf("%d finding(s) by %s: %w", r.Count, r.Engine, ErrInfected)
	}
	return fmt.Errorf("%s: %w: %s", r.Engine, ErrNotScanned, r.Error)
}

// Record is the report as stored on point.
func (r Report) Record(point string) repo.ScanRecord {
	s := repo.ScanRecord{Point: point, Engine: r.Engine, EngineVersion: r.EngineVersion, Database: r.Database,
		Time: r.Started.UTC(), Duration: r.Duration.Seconds(), Result: r.Result, FindingsCount: r.Count, Error: r.Error,
		Policy: repo.ScanPolicy}
	for _, f := range r.Findings[:min(len(r.Findings), repo.MaxScanFindings)] {
		s.Findings = append(s.Findings, repo.ScanFinding{Filesystem: f.Filesystem, Path: f.Path, Signature: f.Signature})
	}
	return s
}

// Scan runs the engine over the targets and reports. It returns an error
// only when ctx ends; an engine that fails gives a failed report.
func (e *Engine) Scan(ctx context.Context, targets []Target) (Report, error) {
	rep := Report{Engine: e.name, EngineVersion: e.version, Database: e.database, Started: e.clock.Now()}
	var errs []string
	if len(targets) == 0 {
		errs = append(errs, "no mounted filesystem to scan")
	}
	runs := [][]Target{targets}
	if e.name == Yara {
		runs = runs[:0] // yara takes one directory per run
		for _, t := range targets {
			runs = append(runs, []Target{t})
		}
	}
	found := false
	for _, ts := range runs {
		if len(ts) == 0 {
			continue
		}
		res := e.run(ctx, ts)
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		for _, t := range ts {
			rep.Filesystems = append(rep.Filesystems, t.Name)
		}
		rep.Count += res.count
		rep.Findings = append(rep.Findings, res.findings[:min(len(res.findings), MaxFindings-len(rep.Findings))]...)
		found = found || res.infected
		if res.err != "" {
			errs = append(errs, res.err)
		}
	}
	switch {
	case found || rep.Count > 0:
		rep.Result = repo.ScanInfected
		rep.Count = max(rep.Count, 1) // clamscan said found, however it printed it
	case len(errs) > 0:
		rep.Result = repo.ScanFailed
	default:
		rep.Result = repo.ScanClean
	}
	rep.Error = strings.Join(errs, "; ")
	rep.Duration = e.clock.Since(rep.Started)
	return rep, nil
}

// runResult is one engine run.
type runResult struct {
	findings []Finding
	count    int
	infected bool   // the exit code says found
	err      string // the run did not complete
}

// clamError starts libclamav's error messages on clamscan's stderr.
const clamError = "LibClamAV Error"

// clamErrorLine returns the first libclamav error line of out, or a
// placeholder when it lies past what was kept.
func clamErrorLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, clamError) {
			return strings.TrimSpace(l)
		}
	}
	return clamError + " (past the first " + fmt.Sprint(maxStderr) + " bytes of its error output)"
}

// maxStderr bounds the engine's error output kept for the report.
const maxStderr = 4096

// clamLimits raise clamscan's limits, whose defaults skip without a word
// what a guest may well hold: files over 100 MiB (400 MiB a scan) and
// files more than 15 directories deep. Sizes go to the most it scans (a
// file of 2 GiB − 1), directory depth to 2048 (a path of PATH_MAX bytes
// has no more). What it still leaves unscanned (a bigger file, an archive
// too deep or too large) it reports as a Heuristics.Limits.Exceeded
// "finding": a scan with one is not clean but not fully scanned (see
// limitsExceeded).
var clamLimits = []string{"--max-filesize=2047M", "--max-scansize=2047M", "--max-dir-recursion=2048", "--alert-exceeds-max=yes"}

// clamLimitsVersion marks the engine version of scans run with clamLimits:
// a result recorded with clamscan's default limits (big and deep files
// silently skipped) is not the same answer and is not reused.
const clamLimitsVersion = " (limits raised)"

// limitSignature starts clamscan's signature for a file it did not scan
// whole because of a limit.
const limitSignature = "Heuristics.Limits.Exceeded."

func (e *Engine) args(ts []Target) []string {
	if e.name == Yara {
		return []string{"-r", "-N", "-w", "holdfast:" + e.db, ts[0].Root}
	}
	args := []string{"-r", "-i", "--no-summary", "--follow-dir-symlinks=0", "--follow-file-symlinks=0", "-d", e.db}
	args = append(args, clamLimits...)
	for _, t := range ts {
		args = append(args, t.Root)
	}
	return args
}

func (e *Engine) run(ctx context.Context, ts []Target) runResult {
	tmp, err := e.tempDir()
	if err != nil {
		return runResult{err: fmt.Sprintf("%s temporary directory: %v", e.name, err)}
	}
	defer os.RemoveAll(tmp)
	args := e.args(ts)
	if e.name == ClamScan {
		args = append([]string{"--tempdir=" + tmp}, args...)
	}
	cmd := e.command(ctx, tmp, args...)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) } // the group: clamscan's helpers too
	cmd.WaitDelay = 10 * time.Second
	stderr := &capped{max: maxStderr}
	if e.name == ClamScan {
		stderr.alarm = clamError
	}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return runResult{err: err.Error()}
	}
	if err := cmd.Start(); err != nil {
		return runResult{err: fmt.Sprintf("start %s: %v", e.name, err)}
	}
	parse := parseClamscan
	if e.name == Yara {
		parse = parseYara
	}
	var res runResult
	res.findings, res.count, err = parse(out, ts)
	if err != nil {
		_, _ = io.Copy(io.Discard, out)
	}
	werr := cmd.Wait()
	for i := range res.findings {
		res.findings[i].Engine = e.name
	}
	e.judge(&res, werr, err, cmd.ProcessState.ExitCode(), stderr)
	return res
}

// judge sets a run's verdict from the engine's exit (werr, code), the
// parse error perr and its error output.
func (e *Engine) judge(res *runResult, werr, perr error, code int, stderr *capped) {
	limits := limitsExceeded(res)
	switch {
	case werr == nil && perr == nil && stderr.found:
		// clamscan exits 0 when libclamav failed on a file it then
		// skipped (unreadable, a broken archive): not a clean scan
		res.err = fmt.Sprintf("%s reported an error and did not scan everything: %s", e.name, textsafe.Escape(clamErrorLine(stderr.String())))
	case werr == nil && perr == nil:
	case e.name == ClamScan && code == 1 && perr == nil:
		res.infected = true
	default:
		msg := strings.TrimSpace(stderr.String())
		if msg == "" && werr != nil {
			msg = werr.Error()
		} else if msg == "" {
			msg = perr.Error()
		}
		res.err = fmt.Sprintf("%s exited %d: %s", e.name, code, textsafe.Escape(msg))
		res.infected = e.name == ClamScan && code == 1
	}
	if limits != "" {
		res.infected = res.infected && res.count > 0 // exit 1 may be for the limits alone
		res.err = strings.TrimPrefix(res.err+"; "+limits, "; ")
	}
}

// limitsExceeded takes clamscan's limit alerts out of the findings and
// says which files were not fully scanned ("" when none).
func limitsExceeded(res *runResult) string {
	var names []string
	kept := res.findings[:0]
	for _, f := range res.findings {
		if !strings.HasPrefix(f.Signature, limitSignature) {
			kept = append(kept, f)
			continue
		}
		res.count--
		if len(names) < 10 {
			names = append(names, fmt.Sprintf("%s:%s (%s)", f.Filesystem, textsafe.Escape(f.Path), strings.TrimPrefix(f.Signature, limitSignature)))
		}
	}
	skipped := len(res.findings) - len(kept)
	res.findings = kept
	if skipped == 0 {
		return ""
	}
	return fmt.Sprintf("not fully scanned: %d file(s) over clamscan's limits: %s", skipped, strings.Join(names, ", "))
}

// capped keeps the first max bytes written to it.
type capped struct {
	buf bytes.Buffer
	max int
	// alarm, when set, is looked for in everything written, also past
	// max and across writes; found says it was.
	alarm string
	found bool
	tail  []byte
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	if c.alarm != "" && !c.found {
		c.tail = append(c.tail, p...)
		c.found = bytes.Contains(c.tail, []byte(c.alarm))
		if keep := len(c.alarm) - 1; len(c.tail) > keep {
			c.tail = append(c.tail[:0], c.tail[len(c.tail)-keep:]...)
		}
	}
	return len(p), nil
}

func (c *capped) String() string { return c.buf.String() }
