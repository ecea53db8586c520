package libvirtconn

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
)

// DefaultURI is the local system daemon, what libvirt:///DOMAIN means.
const DefaultURI = "qemu:///system"

// DefaultSocket is the read-write socket of the local qemu:///system.
const DefaultSocket = "/run/libvirt/libvirt-sock"

// ErrUnsupportedURI is returned for a connection URI Holdfast cannot dial yet.
var ErrUnsupportedURI = errors.New("unsupported libvirt connection URI")

// Conn is a connection to libvirtd.
type Conn struct {
	*golibvirt.Libvirt
	uri string
}

// Dial connects to the libvirtd uri names. ctx bounds nothing yet (the
// local dialer has its own 10 s timeout); it is there for remote transports.
func Dial(_ context.Context, uri string) (*Conn, error) {
	sock, err := Socket(uri)
	if err != nil {
		return nil, err
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(sock), dialers.WithLocalTimeout(10*time.Second)))
	if err := l.ConnectToURI(golibvirt.QEMUSystem); err != nil {
		return nil, fmt.Errorf("connect to libvirt %s: %w", Redact(uri), err)
	}
	return &Conn{Libvirt: l, uri: uri}, nil
}

// URI names the connection for messages (without a user).
func (c *Conn) URI() string { return Redact(c.uri) }

// Close disconnects.
func (c *Conn) Close() error {
	if err := c.Disconnect(); err != nil {
		return fmt.Errorf("disconnect from libvirt %s: %w", Redact(c.uri), err)
	}
	return nil
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

// Socket returns the unix socket a local connection URI names:
// "qemu:///system" (the default socket) or
// "qemu+unix:///system?socket=PATH". Remote URIs are not dialled yet.
func Socket(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", fmt.Errorf("%w: %s: bad URI", ErrUnsupportedURI, Redact(uri))
	}
	if u.Host != "" || u.Path != "/system" {
		return "", fmt.Errorf("%w: %s (only the local qemu:///system and qemu+unix:///system?socket=PATH are supported yet; libvirt+ssh is not built)",
			ErrUnsupportedURI, Redact(uri))
	}
	switch strings.ToLower(u.Scheme) {
	case "qemu":
		if u.RawQuery != "" {
			return "", fmt.Errorf("%w: %s: unexpected query", ErrUnsupportedURI, Redact(uri))
		}
		return DefaultSocket, nil
	case "qemu+unix":
		if s := u.Query().Get("socket"); s != "" {
			return s, nil
		}
		return DefaultSocket, nil
	}
	return "", fmt.Errorf("%w: %s (only qemu:///system and qemu+unix:///system?socket=PATH are supported yet)", ErrUnsupportedURI, Redact(uri))
}
