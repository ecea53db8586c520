package libvirtsrc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/libvirtconn"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// Kind is the source kind of a libvirt source in the configuration
// database.
const Kind = "libvirt"

// ErrInvalid is wrapped by the errors of a faulty definition.
var ErrInvalid = errors.New("invalid libvirt source")

// Definition is a libvirt source's stored definition (see the package
// documentation).
type Definition struct {
	Address     string `json:"address"`
	Proxy       string `json:"proxy,omitempty"`
	ListAddress string `json:"list_address,omitempty"`
}

// Parse reads a stored or requested definition strictly (unknown keys are
// refused) and checks it.
func Parse(raw []byte) (Definition, error) {
	var d Definition
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Definition{}, fmt.Errorf("%w: definition: %v (want address, and proxy or list_address)", ErrInvalid, err)
	}
	return d, d.Check()
}

// Check validates the definition: connection URIs of the qemu driver's
// system daemon, and a valid proxy name.
func (d Definition) Check() error {
	if err := CheckURI(d.Address); err != nil {
		return fmt.Errorf("%w: address: %w", ErrInvalid, err)
	}
	if d.ListAddress != "" {
		if err := CheckURI(d.ListAddress); err != nil {
			return fmt.Errorf("%w: list_address: %w", ErrInvalid, err)
		}
	}
	if d.Proxy != "" && !pki.ValidName(d.Proxy) {
		return fmt.Errorf("%w: proxy %q: not a proxy name", ErrInvalid, d.Proxy)
	}
	return nil
}

// ListURI is the URI the server lists the domains with.
func (d Definition) ListURI() string {
	if d.ListAddress != "" {
		return d.ListAddress
	}
	return d.Address
}

// CheckURI checks the form of a libvirt connection URI a source may name:
// qemu:///system, qemu+unix:///system[?socket=/ABS/PATH] or
// qemu+ssh://USER@HOST[:PORT]/system[?…]. Whether this build dials it is
// libvirtconn's to say, when it connects.
func CheckURI(uri string) error {
	u, err := url.Parse(uri)
	if err != nil || uri == "" {
		return fmt.Errorf("%q: want a libvirt connection URI such as qemu:///system", libvirtconn.Redact(uri))
	}
	shown := libvirtconn.Redact(uri)
	if _, ok := u.User.Password(); ok {
		return fmt.Errorf("%s: a password does not go in the URI (libvirt authenticates by socket permissions or SSH key)", shown)
	}
	if u.Path != "/system" || u.Fragment != "" || u.Opaque != "" {
		return fmt.Errorf("%s: want the system daemon (qemu:///system, qemu+unix:///system?socket=PATH, qemu+ssh://USER@HOST/system)", shown)
	}
	switch strings.ToLower(u.Scheme) {
	case "qemu":
		if u.Host != "" || u.RawQuery != "" {
			return fmt.Errorf("%s: qemu:///system is the local daemon (use qemu+ssh://USER@HOST/system for another host)", shown)
		}
	case "qemu+unix":
		if u.Host != "" {
			return fmt.Errorf("%s: qemu+unix names a local socket (qemu+unix:///system?socket=PATH)", shown)
		}
		if s, ok := u.Query()["socket"]; ok && (len(s) != 1 || !strings.HasPrefix(s[0], "/")) {
			return fmt.Errorf("%s: socket must be one absolute path", shown)
		}
	case "qemu+ssh":
		if u.Hostname() == "" {
			return fmt.Errorf("%s: qemu+ssh needs a host (qemu+ssh://USER@HOST/system)", shown)
		}
	default:
		return fmt.Errorf("%s: want a qemu, qemu+unix or qemu+ssh URI", shown)
	}
	return nil
}
