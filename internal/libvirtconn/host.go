package libvirtconn

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path"
	"strings"
	"time"
)

// RemoteRunDir is the parent of run directories on a remote libvirt host
// when the caller names none: /var/tmp, as virtnbdbackup's scratch
// directory, survives a reboot-less tmpfs clean and is writable by root.
const RemoteRunDir = "/var/tmp"

// DialUnix connects to a unix socket on the host libvirtd runs on: here
// for a local daemon, through the SSH connection's direct-streamlocal
// channel for a remote one, so the bytes (an NBD export) never cross the
// network in the clear.
func (c *Conn) DialUnix(ctx context.Context, socket string) (net.Conn, error) {
	if c.ssh == nil {
		d := net.Dialer{Timeout: localDialTimeout}
		return d.DialContext(ctx, "unix", socket)
	}
	conn, err := c.ssh.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("ssh: open %s on the libvirt host (the server must allow stream-local forwarding): %w", socket, err)
	}
	return conn, nil
}

// Dialer is DialUnix in the shape net.Dialer.DialContext has, for clients
// that take a dial function (the NBD client); it refuses networks other
// than unix.
func (c *Conn) Dialer() func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if network != "unix" {
			return nil, fmt.Errorf("libvirt %s: only unix sockets on the libvirt host are dialled, not %s %s", Redact(c.uri), network, address)
		}
		return c.DialUnix(ctx, address)
	}
}

// TempDir is a directory made on the libvirt host by MkdirTemp.
type TempDir struct {
	// Path is the directory on the libvirt host.
	Path   string
	remove func(context.Context) error
}

// Remove removes the directory and everything in it.
func (d *TempDir) Remove(ctx context.Context) error { return d.remove(ctx) }

// removeTimeout bounds the removal of a remote run directory.
const removeTimeout = time.Minute

// remoteTempDir is the one command a remote run directory costs: make it,
// say so, wait until stdin ends (Remove closes it; a dropped SSH connection
// ends it too, so even a killed Holdfast leaves nothing), remove it.
const remoteTempDir = `mkdir -m 0700 -- @DIR@ || exit 1
echo ready
cat > /dev/null
rm -rf -- @DIR@`

// MkdirTemp creates a new directory, mode 0700, named parent/pattern<random>
// on the libvirt host (parent "" means os.TempDir() here and RemoteRunDir
// on a remote host). On a remote host one SSH session runs mkdir and keeps
// running until Remove, then removes the directory (rm -rf) — also when the
// SSH connection drops.
func (c *Conn) MkdirTemp(ctx context.Context, parent, pattern string) (*TempDir, error) {
	if c.ssh == nil {
		dir, err := os.MkdirTemp(parent, pattern)
		if err != nil {
			return nil, err
		}
		return &TempDir{Path: dir, remove: func(context.Context) error { return os.RemoveAll(dir) }}, nil
	}
	if parent == "" {
		parent = RemoteRunDir
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	dir := path.Join(parent, pattern+hex.EncodeToString(b[:]))
	d, err := c.remoteTempDir(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("create %s on the libvirt host: %w", dir, err)
	}
	return d, nil
}

func (c *Conn) remoteTempDir(ctx context.Context, dir string) (*TempDir, error) {
	sess, err := c.ssh.NewSession()
	if err != nil {
		return nil, fmt.Errorf("ssh session: %w", err)
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		return nil, err
	}
	stderr := &bytes.Buffer{} // read only after Wait, which waits for its copy
	sess.Stderr = stderr
	if err := sess.Start(strings.ReplaceAll(remoteTempDir, "@DIR@", shellQuote(dir))); err != nil {
		sess.Close()
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil && line != "ready\n" {
			err = fmt.Errorf("unexpected output %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		sess.Close()
		if werr := sess.Wait(); werr != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w: %s", werr, strings.TrimSpace(stderr.String()))
		}
		return nil, err
	}
	return &TempDir{Path: dir, remove: func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, removeTimeout)
		defer cancel()
		stop := context.AfterFunc(ctx, func() { sess.Close() })
		defer stop()
		stdin.Close()
		if err := sess.Wait(); err != nil {
			return fmt.Errorf("remove %s on the libvirt host: %w: %s", dir, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}}, nil
}

// RemoveAll removes dir and everything in it on the libvirt host (rm -rf
// over the SSH connection for a remote one): for the run directory of a
// killed run.
func (c *Conn) RemoveAll(ctx context.Context, dir string) error {
	if c.ssh == nil {
		return os.RemoveAll(dir)
	}
	if err := c.run(ctx, "rm -rf -- "+shellQuote(dir)); err != nil {
		return fmt.Errorf("remove %s on the libvirt host: %w", dir, err)
	}
	return nil
}

// run runs a command line on the remote host; its output goes into the
// error when it fails.
func (c *Conn) run(ctx context.Context, cmd string) error {
	sess, err := c.ssh.NewSession()
	if err != nil {
		return fmt.Errorf("ssh session: %w", err)
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	if out, err := sess.CombinedOutput(cmd); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
