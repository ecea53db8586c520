package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"golang.org/x/crypto/ssh"
)

// DefaultURI is the local system daemon, what libvirt:///DOMAIN means.
const DefaultURI = "qemu:///system"

// DefaultSocket is the read-write socket of the local qemu:///system.
const DefaultSocket = "/run/libvirt/libvirt-sock"

// ErrUnsupportedURI is returned for a connection URI Holdfast cannot dial.
var ErrUnsupportedURI = errors.New("unsupported libvirt connection URI")

// localDialTimeout bounds connecting to a local unix socket.
const localDialTimeout = 10 * time.Second

// Conn is a connection to libvirtd.
type Conn struct {
	*golibvirt.Libvirt
	uri string
	// ssh is the connection to the libvirt host of a qemu+ssh URI (nil for
	// a local daemon); DialUnix and the host file operations go through it.
	ssh *ssh.Client
}

// Dial connects to the libvirtd uri names: a local unix socket, or for
// qemu+ssh the socket on the far host through a direct-streamlocal channel
// of one SSH connection (see the package doc). ctx bounds connecting.
func Dial(ctx context.Context, uri string) (*Conn, error) {
	return dial(ctx, uri, osSSHEnv())
}

func dial(ctx context.Context, uri string, env sshEnv) (*Conn, error) {
	ep, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	c := &Conn{uri: uri}
	var dialer interface {
		Dial() (net.Conn, error)
	}
	if ep.ssh == nil {
		dialer = dialers.NewLocal(dialers.WithSocket(ep.socket), dialers.WithLocalTimeout(localDialTimeout))
	} else {
		if c.ssh, err = dialSSH(ctx, ep.ssh, env); err != nil {
			return nil, err
		}
		rc, err := c.DialUnix(ctx, ep.socket)
		if err != nil {
			c.ssh.Close()
			return nil, fmt.Errorf("libvirt %s: %w", Redact(uri), err)
		}
		dialer = dialers.NewAlreadyConnected(rc)
	}
	c.Libvirt = golibvirt.NewWithDialer(dialer)
	if err := c.ConnectToURI(golibvirt.QEMUSystem); err != nil {
		if c.ssh != nil {
			c.ssh.Close()
		}
		return nil, fmt.Errorf("connect to libvirt %s: %w", Redact(uri), err)
	}
	return c, nil
}

// URI names the connection for messages (without a user).
func (c *Conn) URI() string { return Redact(c.uri) }

// Remote reports whether libvirtd runs on another host (qemu+ssh): its
// paths are not this host's.
func (c *Conn) Remote() bool { return c.ssh != nil }

// Close disconnects, and closes the SSH connection of a remote daemon.
func (c *Conn) Close() error {
	err := c.Disconnect()
	if err != nil {
		err = fmt.Errorf("disconnect from libvirt %s: %w", Redact(c.uri), err)
	}
	if c.ssh != nil {
		_ = c.ssh.Close() // the channels are gone with the connection
	}
	return err
}

// Redact drops the user of a connection URI, for messages.
func Redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(bad URI)"
	}
	u.User = nil
	return u.String()
}
