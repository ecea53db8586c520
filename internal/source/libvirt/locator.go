package libvirt

import (
	"fmt"
	"net/url"

	"github.com/holdfast-backup/holdfast/internal/libvirtconn"
	"github.com/holdfast-backup/holdfast/internal/source"
)

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
	l := Locator{Domain: s.Path, URI: libvirtconn.DefaultURI}
	if s.Scheme == "libvirt+ssh" {
		u, err := url.Parse(s.Raw())
		if err != nil {
			return Locator{}, fmt.Errorf("source %s: bad URL", s)
		}
		c := url.URL{Scheme: "qemu+ssh", Host: u.Host, Path: "/system"}
		if name := u.User.Username(); name != "" {
			c.User = url.User(name)
		}
		l.URI = c.String()
	}
	if uri != "" {
		l.URI = uri
	}
	return l, nil
}

// String names the locator for messages (no user name).
func (l Locator) String() string {
	return l.Domain + " on " + libvirtconn.Redact(l.URI)
}
