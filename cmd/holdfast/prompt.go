package main

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// prompt reads a line from the terminal fd without echo. A read from a
// terminal cannot be cancelled, so when ctx ends first prompt restores the
// terminal and returns, leaving the read behind (the process is ending).
func (a *app) prompt(ctx context.Context, fd int, label string) ([]byte, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	// Echo goes off before the label shows, so nothing typed right after
	// it is echoed (ReadPassword turns it off only once it runs).
	if err := echoOff(fd); err != nil {
		return nil, err
	}
	defer func() { _ = term.Restore(fd, state) }()
	fmt.Fprint(a.stderr, label)
	type line struct {
		p   []byte
		err error
	}
	read := make(chan line, 1)
	go func() {
		p, err := term.ReadPassword(fd)
		read <- line{p, err}
	}()
	select {
	case l := <-read:
		fmt.Fprintln(a.stderr)
		return l.p, l.err
	case <-ctx.Done():
		_ = term.Restore(fd, state)
		fmt.Fprintln(a.stderr)
		return nil, ctx.Err()
	}
}

// echoOff stops the terminal fd from echoing input.
func echoOff(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Lflag &^= unix.ECHO
	t.Lflag |= unix.ICANON | unix.ISIG
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}
