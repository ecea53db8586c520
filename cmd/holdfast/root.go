package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/logging"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/repo/storage/backends"
	"github.com/holdfast-backup/holdfast/internal/throttle"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// app carries the global options and I/O streams to every command.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	repoDir        string
	s3Insecure     bool
	passwordFile   string
	passwordCmd    string
	repoReadLimit  string
	verbose        bool
	logLevel       logging.Level
	logFormat      logging.Format
	getenv         func(string) string
	clock          clock.Clock
	version        versionInfo
}

func newRootCommand(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, clock: clock.Real(), version: currentVersion()}
	root := &cobra.Command{
		Use:           "holdfast",
		Short:         "Image-level backup and recovery for virtual machines",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       a.version.Version, // --version prints a.version in full (the template)
	}
	root.SetVersionTemplate(a.version.String())
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		if uerr := unknownSubcommand(c, c.Flags().Args()); c.HasSubCommands() && uerr != nil {
			return uerr // "holdfast verfy --json": the command is wrong, not the flag
		}
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.repoDir, "repo", "", "repository: a directory or s3://HOST[:PORT]/BUCKET[/PREFIX] (s3+http:// for plain HTTP)\n(default $HOLDFAST_REPOSITORY); S3 keys from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	pf.BoolVar(&a.s3Insecure, "s3-insecure", false, "do not verify the object store's certificate (only on a network you trust)")
	pf.StringVar(&a.passwordFile, "password-file", "", "read the repository password from this file (default $HOLDFAST_PASSWORD_FILE)")
	pf.StringVar(&a.passwordCmd, "password-command", "", "run this command (no shell) and read the repository password from its output (default $HOLDFAST_PASSWORD_COMMAND)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log more detail to stderr")
	pf.Var(&a.logLevel, "log-level", "log level: debug, info, warn or error (default info for server, agents and instant recovery, warn otherwise; debug with -v)")
	pf.Var(&a.logFormat, "log-format", "log line format on stderr: text or json")
	pf.StringVar(&a.repoReadLimit, "repo-read-limit", "", "limit reads from the repository to this many bytes per second (e.g. 50MiB; restore, verify --read-data)")
	root.AddCommand(
		newRepoCommand(a),
		newBackupCommand(a),
		newPointsCommand(a),
		newRestoreCommand(a),
		newVerifyCommand(a),
		newForgetCommand(a),
		newGCCommand(a),
		newCopyCommand(a),
		newHoldsCommand(a),
		newStatsCommand(a),
		newVersionCommand(a),
		newServerCommand(a),
		newProxyCommand(a), newRepositoryCommand(a), newSourceCommand(a), newJobCommand(a), newNotificationCommand(a), newSessionCommand(a), newPointCommand(a), newInstantCommand(a),
		newPublishCommand(a), newUnpublishCommand(a), newFilesCommand(a), newScanCommand(a),
		newTokenCommand(a), newUserCommand(a), newManCommand(a),
		newVSphereCommand(a),
	)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	rejectUnknownSubcommands(root)
	return root
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)}
	}
	return nil
}

// exactArgs requires n positional arguments.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s needs %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}

// logger is the log of a command that runs once: warnings and errors
// unless --log-level or -v says otherwise.
func (a *app) logger() *slog.Logger { return a.newLogger(slog.LevelWarn) }

// daemonLogger is the log of a process that keeps running (server,
// agents, instant recovery): info and above by default, so what it does
// and why a session failed are in its log.
func (a *app) daemonLogger() *slog.Logger { return a.newLogger(slog.LevelInfo) }

func (a *app) newLogger(def slog.Level) *slog.Logger {
	if a.verbose {
		def = slog.LevelDebug
	}
	return logging.New(a.stderr, a.logLevel.Or(def), a.logFormat)
}

// repoLocation is the repository as given: --repo, else
// $HOLDFAST_REPOSITORY; a directory or an s3:// URL.
func (a *app) repoLocation() (string, error) {
	loc := a.repoDir
	if loc == "" {
		loc = a.getenv("HOLDFAST_REPOSITORY")
	}
	if loc == "" {
		return "", usageError{errors.New("no repository given: use --repo DIR|s3://HOST/BUCKET[/PREFIX] or set HOLDFAST_REPOSITORY")}
	}
	return loc, nil
}

// repoChild is the command for a child holdfast process (instant
// recovery, publish) that opens the same repository: args followed by the
// repository flags (a directory made absolute) and the password file; a
// password given otherwise reaches the child only through its environment.
func (a *app) repoChild(ctx context.Context, self string, args []string) (*exec.Cmd, error) {
	if a.repoDir != "" { // else the child reads $HOLDFAST_REPOSITORY as we did
		loc := a.repoDir
		if !backends.IsRemote(loc) {
			abs, err := filepath.Abs(loc)
			if err != nil {
				return nil, err
			}
			loc = abs
		}
		args = append(args, "--repo", loc)
		if a.s3Insecure {
			args = append(args, "--s3-insecure")
		}
	}
	if a.passwordFile != "" {
		args = append(args, "--password-file", a.passwordFile)
	}
	cmd := exec.Command(self, args...)
	cmd.Env = os.Environ()
	if pw, err := a.password(ctx, false); err == nil && len(pw) > 0 && a.passwordFile == "" {
		cmd.Env = passwordEnv(cmd.Env, pw) // only to the child, never printed
	}
	return cmd, nil
}

func (a *app) backend() (storage.Backend, error) {
	loc, err := a.repoLocation()
	if err != nil {
		return nil, err
	}
	be, err := backends.Open(loc, backends.Options{Getenv: a.getenv, S3Insecure: a.s3Insecure})
	if err != nil {
		return nil, usageError{err}
	}
	return be, nil
}

// openRepo opens the repository, asking for a password only when it is
// encrypted.
func (a *app) openRepo(ctx context.Context) (*repo.Repository, error) {
	loc, err := a.repoLocation()
	if err != nil {
		return nil, err
	}
	return a.openLocation(ctx, loc, func(ctx context.Context) ([]byte, error) { return a.password(ctx, false) })
}

// openLocation opens the repository at loc (a directory or an s3:// URL),
// asking pw for the password only when it is encrypted.
func (a *app) openLocation(ctx context.Context, loc string, pw func(context.Context) ([]byte, error)) (*repo.Repository, error) {
	be, err := backends.Open(loc, backends.Options{Getenv: a.getenv, S3Insecure: a.s3Insecure})
	if err != nil {
		return nil, usageError{err}
	}
	if ok, err := backends.Exists(ctx, be); err != nil {
		return nil, err
	} else if !ok {
		return nil, fmt.Errorf("%s: %w", be.Location(), repo.ErrNotInitialized)
	}
	var password []byte
	if cb, err := be.Load(ctx, "config"); err == nil {
		if cfg, err := repo.ParseConfig(cb); err == nil && cfg.Encryption != repo.EncryptionNone {
			if password, err = pw(ctx); err != nil {
				return nil, err
			}
		}
	}
	var sb storage.Backend = be
	if a.repoReadLimit != "" {
		limit, err := parseSize(a.repoReadLimit)
		if err != nil {
			return nil, usageError{fmt.Errorf("--repo-read-limit: %w", err)}
		}
		sb = storage.ReadLimited(be, throttle.NewBucket(int64(limit), 0, a.clock))
	}
	return repo.Open(ctx, sb, password, repo.Options{})
}

// openPoint opens the repository and resolves ref (a point ID or
// VM:latest…) in it; the caller closes the repository.
func (a *app) openPoint(ctx context.Context, ref string) (*repo.Repository, *repo.Manifest, error) {
	r, err := a.openRepo(ctx)
	if err != nil {
		return nil, nil, err
	}
	m, err := r.ResolvePoint(ctx, ref)
	if err != nil {
		_ = r.Close()
		return nil, nil, err
	}
	return r, m, nil
}

// isTerminal reports whether w is a terminal wide enough to draw progress
// bars on (a pseudo-terminal without a size is treated as none).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return false
	}
	width, _, err := term.GetSize(int(f.Fd()))
	return err == nil && width > 0
}
