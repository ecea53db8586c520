package libvirt

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// DefaultSocket is the read-write socket of the local qemu:///system.
const DefaultSocket = "/run/libvirt/libvirt-sock"

// ErrUnsupportedURI is returned for a connection URI Holdfast cannot dial yet.
var ErrUnsupportedURI = errors.New("unsupported libvirt connection URI")

// Locator names a domain and the libvirt daemon that runs it.
type Locator struct {
	// Domain is the domain's name.
	Domain string
	// URI is the libvirt connection URI ("qemu:///system",
	// "qemu+ssh://root@kvm1/system", "qemu+unix:///system?socket=PATH").
	URI string
}

// FromSpec returns the locator of a libvirt:// or libvirt+ssh:// source;
// uri, when set (--libvirt-uri), replaces the connection URI the spec
// implies.
func FromSpec(s source.Spec, uri string) (Locator, error) {
	if s.Kind != source.KindLibvirt {
		return Locator{}, fmt.Errorf("source %s is not a libvirt domain", s)
	}
	l := Locator{Domain: s.Path, URI: "qemu:///system"}
	if s.Scheme == "libvirt+ssh" {
		u, err := url.Parse(s.Raw())
		if err != nil {
			return Locator{}, fmt.Errorf("source %s: bad URL", s)
		}
		l.URI = "qemu+ssh://" + u.User.Username() + "@" + u.Host + "/system"
	}
	if uri != "" {
		l.URI = uri
	}
	return l, nil
}

// String names the locator for messages (no user name).
func (l Locator) String() string {
	return l.Domain + " on " + redactURI(l.URI)
}

// redactURI drops the user of a connection URI.
func redactURI(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(bad URI)"
	}
	u.User = nil
	return u.String()
}

// socket returns the unix socket a local connection URI names: "qemu:///system"
// (the default socket) or "qemu+unix:///system?socket=PATH". Remote URIs
// are not dialled yet.
func (l Locator) socket() (string, error) {
	u, err := url.Parse(l.URI)
	if err != nil {
		return "", fmt.Errorf("%w: %s: bad URI", ErrUnsupportedURI, redactURI(l.URI))
	}
	if u.Host != "" || u.Path != "/system" {
		return "", fmt.Errorf("%w: %s (only the local qemu:///system and qemu+unix:///system?socket=PATH are supported yet; libvirt+ssh is not built)",
			ErrUnsupportedURI, redactURI(l.URI))
	}
	switch strings.ToLower(u.Scheme) {
	case "qemu":
		if u.RawQuery != "" {
			return "", fmt.Errorf("%w: %s: unexpected query", ErrUnsupportedURI, redactURI(l.URI))
		}
		return DefaultSocket, nil
	case "qemu+unix":
		if s := u.Query().Get("socket"); s != "" {
			return s, nil
		}
		return DefaultSocket, nil
	}
	return "", fmt.Errorf("%w: %s (only qemu:///system and qemu+unix:///system?socket=PATH are supported yet)", ErrUnsupportedURI, redactURI(l.URI))
}
