package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ptyRun is a command running on a pseudo-terminal of its own, as in a
// terminal emulator or tmux: it is the session leader and the foreground
// process group, so a Ctrl-C typed into the terminal reaches it as SIGINT.
type ptyRun struct {
	t      *testing.T
	cmd    *exec.Cmd
	master *os.File
	tty    string // the terminal's path (/dev/pts/N)
	mu     sync.Mutex
	out    bytes.Buffer
	more   chan struct{} // receives after each read from the terminal
	done   chan error    // cmd.Wait's result
}

// openPTY opens a pseudo-terminal pair 120 columns wide; it skips the test
// where the system has none.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Fatalf("open pty: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		m.Close()
		s.Close()
		t.Fatalf("pty size: %v", err)
	}
	return m, s
}

// startPTY starts cmd on a new pseudo-terminal as its controlling terminal.
func startPTY(t *testing.T, cmd *exec.Cmd) *ptyRun {
	t.Helper()
	master, slave := openPTY(t)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		master.Close()
		slave.Close()
		t.Fatal(err)
	}
	tty := slave.Name()
	slave.Close() // the command holds it now; reads end with EIO when it exits
	p := &ptyRun{t: t, cmd: cmd, master: master, tty: tty, more: make(chan struct{}, 1), done: make(chan error, 1)}
	go p.read()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		master.Close()
	})
	return p
}

func (p *ptyRun) read() {
	buf := make([]byte, 4096)
	for {
		n, err := p.master.Read(buf)
		p.mu.Lock()
		p.out.Write(buf[:n])
		p.mu.Unlock()
		select {
		case p.more <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// output is everything the command wrote to the terminal so far.
func (p *ptyRun) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitOutput waits until the terminal shows every one of want; the test
// fails if the command ends first or nothing shows within limit.
func (p *ptyRun) waitOutput(limit time.Duration, want ...string) {
	p.t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		s := p.output()
		all := true
		for _, w := range want {
			all = all && strings.Contains(s, w)
		}
		if all {
			return
		}
		select {
		case <-p.more:
		case err := <-p.done:
			p.done <- err
			p.t.Fatalf("%v ended (%v) before showing %q:\n%q", p.cmd.Args, err, want, p.output())
		case <-deadline.C:
			p.t.Fatalf("%v showed no %q within %v:\n%q", p.cmd.Args, want, limit, p.output())
		}
	}
}

// typeKeys writes s to the terminal as if typed (\x03 is Ctrl-C).
func (p *ptyRun) typeKeys(s string) {
	p.t.Helper()
	if _, err := p.master.WriteString(s); err != nil {
		p.t.Fatal(err)
	}
}

// echoOn reports whether the terminal echoes what is typed.
func (p *ptyRun) echoOn() bool {
	p.t.Helper()
	f, err := os.OpenFile(p.tty, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	defer f.Close()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		p.t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// waitExit waits for the command to end, at most limit, and returns its
// exit code and how long it took; past limit the test fails (and the
// command is killed).
func (p *ptyRun) waitExit(limit time.Duration) (int, time.Duration) {
	p.t.Helper()
	start := time.Now()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode(), time.Since(start)
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		p.t.Fatalf("%v still running %v after the signal:\n%q", p.cmd.Args, limit, p.output())
	}
	return -1, 0
}
