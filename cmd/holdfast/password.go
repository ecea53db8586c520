package main

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/password"
	"golang.org/x/term"
)

// password returns the repository password from the first source given
// (internal/password: --password-file or --password-command, then
// $HOLDFAST_PASSWORD_FILE or $HOLDFAST_PASSWORD_COMMAND, then
// $HOLDFAST_PASSWORD), else a prompt on the terminal; confirm asks twice
// (for init).
func (a *app) password(ctx context.Context, confirm bool) ([]byte, error) {
	pw, err := a.passwordSources(true).Read(ctx)
	switch {
	case err == nil:
		return pw, nil
	case errors.Is(err, password.ErrUsage):
		return nil, usageError{err}
	case !errors.Is(err, password.ErrNoSource):
		return nil, err
	}
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil, usageError{errors.New("no password: use --password-file or --password-command, set HOLDFAST_PASSWORD_FILE, " +
			"HOLDFAST_PASSWORD_COMMAND or HOLDFAST_PASSWORD, or run on a terminal")}
	}
	return a.promptPassword(ctx, f, confirm)
}

// passwordSources are the password flags and, with env, the environment.
func (a *app) passwordSources(env bool) password.Sources {
	s := password.Sources{File: a.passwordFile, Command: a.passwordCmd, Stdin: a.stdin, Stderr: a.stderr}
	if env {
		s.Getenv = a.getenv
	}
	return s
}

// promptPassword reads the password on the terminal f. An interrupt at
// the prompt ends it (exit 130) with the terminal's echo back on.
func (a *app) promptPassword(ctx context.Context, f *os.File, confirm bool) ([]byte, error) {
	p, err := a.prompt(ctx, int(f.Fd()), "Repository password: ")
	if err != nil {
		return nil, err
	}
	if confirm {
		q, err := a.prompt(ctx, int(f.Fd()), "Repeat password: ")
		if err != nil {
			return nil, err
		}
		if string(p) != string(q) {
			return nil, usageError{errors.New("passwords do not match")}
		}
	}
	if len(p) == 0 {
		return nil, usageError{errors.New("empty password")}
	}
	return p, nil
}

// jobPassword reads the password a command sends to the server: only
// --password-file or --password-command count ("" without either; the
// environment's password is never sent unasked). It goes into the request
// only and is never printed.
func (a *app) jobPassword(ctx context.Context) (string, error) {
	pw, err := a.passwordSources(false).Read(ctx)
	switch {
	case errors.Is(err, password.ErrNoSource):
		return "", nil
	case errors.Is(err, password.ErrUsage):
		return "", usageError{err}
	case err != nil:
		return "", err
	}
	return string(pw), nil
}

// passwordEnv is env for a child holdfast process that is to use pw: the
// password variables replaced by HOLDFAST_PASSWORD=pw, so the child
// neither runs the command again nor reads another source first.
func passwordEnv(env []string, pw []byte) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k != password.EnvFile && k != password.EnvCommand && k != password.EnvPassword {
			out = append(out, kv)
		}
	}
	return append(out, password.EnvPassword+"="+string(pw))
}
