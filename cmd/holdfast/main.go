// Command holdfast is the Holdfast backup tool. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/holdfast-backup/holdfast/internal/guestfiles"
	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/scan"
	"github.com/holdfast-backup/holdfast/internal/server"
	"github.com/holdfast-backup/holdfast/internal/textsafe"
	"github.com/holdfast-backup/holdfast/internal/vsphererestore"
	"golang.org/x/term"
)

// Exit codes (documented in README.md).
const (
	exitOK           = 0
	exitFailure      = 1
	exitUsage        = 2
	exitNoRepository = 3
	exitWrongPass    = 4
	exitDamage       = 5
	exitLocked       = 6
	exitNotScanned   = 7
	exitImmutable    = 8
	exitInterrupted  = 130
)

// usageError marks errors in how the command was called.
type usageError struct{ error }

// damageError marks a verify run that found damage.
type damageError struct{ error }

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	// The note on what a second signal does is for a person at a terminal;
	// off one (a service, a script) stderr stays log lines only.
	notes := io.Writer(io.Discard)
	if term.IsTerminal(int(os.Stderr.Fd())) {
		notes = os.Stderr
	}
	ctx, stop := cancelOnSignal(context.Background(), sigs, notes, os.Exit)
	stopProfile := startCPUProfile(os.Getenv, os.Stderr)
	err := newRootCommand(os.Stdin, os.Stdout, os.Stderr).ExecuteContext(ctx)
	stopProfile()
	interrupted := ctx.Err() != nil
	stop()
	signal.Stop(sigs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "holdfast: %s\n", errorText(err))
	}
	os.Exit(exitCode(err, interrupted))
}

// errorText is err's message for the terminal: errors may carry guest
// file names (files restore, scan), so each line is escaped (no control
// bytes), the lines of a joined error kept.
func errorText(err error) string {
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		lines[i] = textsafe.Escape(l)
	}
	return strings.Join(lines, "\n")
}

// exitCode maps an error to the documented exit code, in one place.
func exitCode(err error, interrupted bool) int {
	var ue usageError
	var de damageError
	switch {
	case err == nil:
		return exitOK
	case interrupted || errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, repo.ErrWrongPassword):
		return exitWrongPass
	case errors.Is(err, repo.ErrNotInitialized):
		return exitNoRepository
	case errors.As(err, &de), errors.Is(err, repo.ErrCorrupt), errors.Is(err, repo.ErrMissing):
		return exitDamage
	case errors.Is(err, pipeline.ErrTargetExists), errors.Is(err, guestfiles.ErrExists), errors.Is(err, vsphererestore.ErrExists):
		return exitUsage
	case errors.Is(err, repo.ErrLocked), errors.Is(err, server.ErrDataDirLocked):
		return exitLocked
	case errors.Is(err, instant.ErrInUse): // refused without --force, as a restore target that exists
		return exitUsage
	case errors.Is(err, scan.ErrNotScanned): // the malware scan could not run: neither clean nor infected
		return exitNotScanned
	case errors.Is(err, storage.ErrImmutable), errors.Is(err, repo.ErrPointLocked): // a hardened repository's window, chattr +i, or Object Lock
		return exitImmutable
	}
	return exitFailure
}
