package vsphere

import (
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// Locator is where a vSphere object lives: the user to log in as, the
// vCenter or ESXi endpoint and an inventory path below it.
type Locator struct {
	User string
	// Host is HOST or HOST:PORT (port 443 when absent).
	Host string
	// Path is the inventory path, percent-decoded: "" for the root,
	// "/DC", "/DC/vm/Folder/VM".
	Path string
}

// ParseURL reads vsphere://USER@HOST[:PORT][/DATACENTER[/…]]: any
// inventory path, for listing (source.Parse checks a backup source names
// a VM). A password in the URL is refused.
func ParseURL(raw string) (Locator, error) {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "vsphere") {
		return Locator{}, fmt.Errorf("%s: want vsphere://USER@HOST[:PORT][/DATACENTER[/…]]", source.Redact(raw))
	}
	if u.Host == "" || u.User == nil || u.User.Username() == "" {
		return Locator{}, fmt.Errorf("%s: want vsphere://USER@HOST[:PORT][/DATACENTER[/…]]", source.Redact(raw))
	}
	if _, ok := u.User.Password(); ok {
		return Locator{}, fmt.Errorf("%s: a password does not go in the URL (use HOLDFAST_VSPHERE_PASSWORD or --vsphere-password-file)", source.Redact(raw))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return Locator{}, fmt.Errorf("%s: unexpected query or fragment", source.Redact(raw))
	}
	p := strings.Trim(u.Path, "/")
	if p != "" {
		for _, part := range strings.Split(p, "/") {
			if part == "" || part == "." || part == ".." {
				return Locator{}, fmt.Errorf("%s: bad inventory path", source.Redact(raw))
			}
		}
		p = "/" + p
	}
	return Locator{User: u.User.Username(), Host: u.Host, Path: p}, nil
}

// FromSpec returns the locator of a vsphere:// backup source.
func FromSpec(s source.Spec) (Locator, error) {
	if s.Kind != source.KindVSphere {
		return Locator{}, fmt.Errorf("source %s is not a vSphere VM", s)
	}
	return ParseURL(s.Raw())
}

// Datacenter returns the first element of the inventory path.
func (l Locator) Datacenter() string {
	dc, _, _ := strings.Cut(strings.TrimPrefix(l.Path, "/"), "/")
	return dc
}

// VMName returns the last element of the inventory path.
func (l Locator) VMName() string {
	return l.Path[strings.LastIndexByte(l.Path, '/')+1:]
}

// Endpoint returns HOST:PORT (port 443 by default).
func (l Locator) Endpoint() string {
	if _, _, err := net.SplitHostPort(l.Host); err == nil {
		return l.Host
	}
	return net.JoinHostPort(strings.Trim(l.Host, "[]"), "443")
}

// String names the locator for messages: no password ever, the user kept.
func (l Locator) String() string {
	return "vsphere://" + url.PathEscape(l.User) + "@" + l.Host + l.Path
}
