package libvirtconn

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path"
	"strings"
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

// MkdirTemp creates a new directory, mode 0700, named parent/pattern<random>
// on the libvirt host (parent "" means os.TempDir() here and RemoteRunDir
// on a remote host) and returns its path. On a remote host it runs mkdir
// over the SSH connection.
func (c *Conn) MkdirTemp(ctx context.Context, parent, pattern string) (string, error) {
	if c.ssh == nil {
		return os.MkdirTemp(parent, pattern)
	}
	if parent == "" {
		parent = RemoteRunDir
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	dir := path.Join(parent, pattern+hex.EncodeToString(b[:]))
	if err := c.run(ctx, "mkdir -m 0700 -- "+shellQuote(dir)); err != nil {
		return "", fmt.Errorf("create %s on the libvirt host: %w", dir, err)
	}
	return dir, nil
}

// RemoveAll removes dir and everything in it on the libvirt host (rm -rf
// over the SSH connection for a remote one).
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
	var out bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &out
	if err := sess.Run(cmd); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(out.String()))
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
