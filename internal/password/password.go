package password

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
)

var (
	// ErrNoSource is returned when no source gives a password.
	ErrNoSource = errors.New("no password source")
	// ErrUsage marks contradicting sources and empty passwords.
	ErrUsage = errors.New("password source")
	// ErrCommand marks a password command that could not run or failed.
	ErrCommand = errors.New("password command failed")
)

// Environment variables, in the order Read looks at them.
const (
	EnvFile     = "HOLDFAST_PASSWORD_FILE"
	EnvCommand  = "HOLDFAST_PASSWORD_COMMAND"
	EnvPassword = "HOLDFAST_PASSWORD"
)

// Sources are where a password may come from. The zero value gives none.
type Sources struct {
	// File and Command are the flags --password-file and
	// --password-command.
	File, Command string
	// Getenv reads the environment; nil means the environment is not
	// consulted (only the flags count).
	Getenv func(string) string
	// Stdin and Stderr are the command's (nil: none).
	Stdin  io.Reader
	Stderr io.Writer
}

// source is one place a password comes from: a file or a command, and the
// name (flag or variable) that gave it.
type source struct {
	name, file, command string
}

// Read returns the password from the first source given (see the package
// documentation for the order), or ErrNoSource.
func (s Sources) Read(ctx context.Context) ([]byte, error) {
	src, err := s.pick()
	if err != nil {
		return nil, err
	}
	var pw []byte
	switch {
	case src.file != "":
		if pw, err = os.ReadFile(src.file); err != nil {
			return nil, fmt.Errorf("%s: read password file: %w", src.name, err)
		}
		pw = trimLineEnd(pw)
	case src.command != "":
		if pw, err = s.run(ctx, src); err != nil {
			return nil, err
		}
	case s.Getenv != nil && s.Getenv(EnvPassword) != "":
		return []byte(s.Getenv(EnvPassword)), nil
	default:
		return nil, ErrNoSource
	}
	if len(pw) == 0 {
		return nil, fmt.Errorf("%w: %s gave an empty password", ErrUsage, src.name)
	}
	return pw, nil
}

// pick chooses the file or command source: the flags, else the
// environment. Both kinds at the same level contradict each other.
func (s Sources) pick() (source, error) {
	if s.File != "" || s.Command != "" {
		if s.File != "" && s.Command != "" {
			return source{}, fmt.Errorf("%w: give --password-file or --password-command, not both", ErrUsage)
		}
		return source{name: flagName(s.File), file: s.File, command: s.Command}, nil
	}
	if s.Getenv == nil {
		return source{}, nil
	}
	file, command := s.Getenv(EnvFile), s.Getenv(EnvCommand)
	switch {
	case file != "" && command != "":
		return source{}, fmt.Errorf("%w: %s and %s are both set; unset one (or give --password-file or --password-command)",
			ErrUsage, EnvFile, EnvCommand)
	case file != "":
		return source{name: EnvFile, file: file}, nil
	case command != "":
		return source{name: EnvCommand, command: command}, nil
	}
	return source{}, nil
}

func flagName(file string) string {
	if file != "" {
		return "--password-file"
	}
	return "--password-command"
}

// run runs the command and returns its output without the final line
// ending. Neither the output nor the command line goes into an error.
func (s Sources) run(ctx context.Context, src source) ([]byte, error) {
	args, err := Split(src.command)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrUsage, src.name, err)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrUsage, src.name)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s.Stdin, &out, s.Stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("%w: %s: %s", ErrCommand, src.name, ee.ProcessState)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrCommand, src.name, err)
	}
	return trimLineEnd(out.Bytes()), nil
}

// trimLineEnd removes one final "\n" or "\r\n".
func trimLineEnd(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}
