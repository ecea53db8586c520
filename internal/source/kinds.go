package source

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/nbd"
)

// Kind is the platform a source is read from.
type Kind string

// The source kinds.
const (
	// KindFile is a local image (raw, qcow2, VMDK) or block device: a path
	// or a file:// URL.
	KindFile Kind = "file"
	// KindNBD is an NBD export: nbd://, nbds://, nbd+unix://, nbds+unix://.
	KindNBD Kind = "nbd"
	// KindQEMU is a whole running QEMU VM, named by its QMP socket:
	// qemu:///ABSOLUTE/PATH/qmp.sock.
	KindQEMU Kind = "qemu"
	// KindVSphere is a whole VM of a vCenter or ESXi host, named by its
	// inventory path: vsphere://USER@HOST[:PORT]/DATACENTER/vm/FOLDER/…/VM.
	KindVSphere Kind = "vsphere"
	// KindLibvirt is a whole VM (domain) of libvirt: libvirt:///DOMAIN on
	// the local qemu:///system, libvirt+ssh://USER@HOST/DOMAIN through
	// libvirt's SSH transport.
	KindLibvirt Kind = "libvirt"
)

// kindRow is one row of the source table: a URL scheme ("" for a plain
// path), its kind and how a spec of it is read. Adding a source kind is
// adding its rows here.
type kindRow struct {
	scheme string
	kind   Kind
	// transports the source may be read with, in preference order.
	transports []Transport
	// wholeVM: the spec names a whole VM whose disks come from a snapshot
	// (one task backs them all up), not one disk.
	wholeVM bool
	// publicQuery lists the query parameters that are no secret; the
	// values of all others are hidden in the redacted form.
	publicQuery []string
	// parse validates the spec and fills in its path and reach key. It
	// gets the redacted form for its messages and the raw one for its
	// values; its errors must never quote raw.
	parse func(s *Spec, raw string) error
}

// kindTable is the source table.
func kindTable() []kindRow {
	direct := []Transport{TransportDirect}
	plain, tls := []Transport{TransportNBD}, []Transport{TransportNBDTLS}
	return []kindRow{
		{scheme: "", kind: KindFile, transports: direct, parse: parsePath},
		{scheme: "file", kind: KindFile, transports: direct, parse: parseFileURL},
		{scheme: "nbd", kind: KindNBD, transports: plain, parse: parseNBD},
		{scheme: "nbds", kind: KindNBD, transports: tls, parse: parseNBD},
		{scheme: "nbd+unix", kind: KindNBD, transports: plain, publicQuery: []string{"socket"}, parse: parseNBD},
		{scheme: "nbds+unix", kind: KindNBD, transports: tls, publicQuery: []string{"socket"}, parse: parseNBD},
		{scheme: "qemu", kind: KindQEMU, transports: []Transport{TransportDirect, TransportHotAdd, TransportNBD},
			wholeVM: true, parse: parseQEMU},
		{scheme: "vsphere", kind: KindVSphere, transports: []Transport{TransportDirect, TransportHotAdd, TransportNBD},
			wholeVM: true, parse: parseVSphere},
		{scheme: "libvirt", kind: KindLibvirt, transports: []Transport{TransportHotAdd}, wholeVM: true, parse: parseLibvirt},
		{scheme: "libvirt+ssh", kind: KindLibvirt, transports: []Transport{TransportHotAdd}, wholeVM: true, parse: parseLibvirt},
	}
}

// lookup returns the row of a lower-case scheme.
func lookup(scheme string) (kindRow, bool) {
	for _, r := range kindTable() {
		if r.scheme == scheme {
			return r, true
		}
	}
	return kindRow{}, false
}

// schemeList names the supported URL forms for messages.
func schemeList() string {
	var s []string
	for _, r := range kindTable() {
		if r.scheme != "" {
			s = append(s, r.scheme+"://")
		}
	}
	return "a path, " + strings.Join(s, ", ")
}

// parsePath reads a plain image path or block device.
func parsePath(s *Spec, raw string) error {
	s.Path = raw
	s.key = filepath.Clean(raw)
	return nil
}

// parseFileURL reads a file:///path URL (host empty or localhost).
func parseFileURL(s *Spec, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("file source %s: bad URL", s.redacted)
	}
	switch {
	case u.Opaque != "" || !strings.HasPrefix(u.Path, "/"):
		return fmt.Errorf("file source %s: want an absolute file:///path URL", s.redacted)
	case u.Host != "" && u.Host != "localhost":
		return fmt.Errorf("file source %s: remote host %q not supported", s.redacted, u.Host)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("file source %s: unexpected user, query or fragment (encode '?' and '#' as %%3F and %%23)", s.redacted)
	}
	s.Path = u.Path
	s.key = filepath.Clean(u.Path)
	return nil
}

// parseNBD reads an NBD URL: the grammar is internal/nbd's, checked on the
// redacted form so that its messages hold no secret.
func parseNBD(s *Spec, raw string) error {
	if _, err := nbd.ParseURL(s.redacted); err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("nbd source %s: bad URL", s.redacted)
	}
	if u.Host != "" {
		s.key = s.Scheme + "://" + u.Host
		return nil
	}
	// nbd+unix:///export?socket=PATH: the socket names the source
	s.Path = u.Query().Get("socket")
	s.key = s.Scheme + "://" + filepath.Clean(s.Path)
	return nil
}

// parseQEMU reads qemu:///ABSOLUTE/PATH/qmp.sock; the path is taken as
// written (no percent-decoding).
func parseQEMU(s *Spec, raw string) error {
	_, rest, _ := strings.Cut(raw, ":")
	sock, ok := strings.CutPrefix(rest, "//")
	if !ok || !strings.HasPrefix(sock, "/") || strings.ContainsAny(sock, "?#") {
		return fmt.Errorf("qemu source %s: want qemu:///ABSOLUTE/PATH/qmp.sock (the QMP socket of the whole VM)", s.redacted)
	}
	s.Path = sock
	s.key = s.Scheme + "://" + filepath.Clean(sock)
	return nil
}

// parseVSphere reads vsphere://USER@HOST[:PORT]/DATACENTER/vm/…/VM: a user,
// a host and an inventory path through a datacenter's vm folder. Path is
// the inventory path, percent-decoded ("/DC/vm/Folder/VM"); the password
// never travels in the URL.
func parseVSphere(s *Spec, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("vsphere source %s: bad URL", s.redacted)
	}
	want := "want vsphere://USER@HOST[:PORT]/DATACENTER/vm/[FOLDER/…/]VM"
	switch {
	case u.Host == "" || u.User == nil || u.User.Username() == "":
		return fmt.Errorf("vsphere source %s: %s", s.redacted, want)
	case hasPassword(u):
		return fmt.Errorf("vsphere source %s: a password does not go in the URL (use HOLDFAST_VSPHERE_PASSWORD or --vsphere-password-file)", s.redacted)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("vsphere source %s: unexpected query or fragment", s.redacted)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 3 || parts[1] != "vm" || slices.Contains(parts, "") || slices.Contains(parts, "..") || slices.Contains(parts, ".") {
		return fmt.Errorf("vsphere source %s: %s", s.redacted, want)
	}
	s.Path = "/" + strings.Join(parts, "/")
	s.key = s.Scheme + "://" + strings.ToLower(u.Host)
	return nil
}

func hasPassword(u *url.URL) bool {
	_, ok := u.User.Password()
	return ok
}

// parseLibvirt reads libvirt:///DOMAIN and libvirt+ssh://USER@HOST/DOMAIN.
// Path is the domain name, percent-decoded.
func parseLibvirt(s *Spec, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("libvirt source %s: bad URL", s.redacted)
	}
	want := "want libvirt:///DOMAIN or libvirt+ssh://USER@HOST/DOMAIN"
	name := strings.TrimPrefix(u.Path, "/")
	switch {
	case u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return fmt.Errorf("libvirt source %s: unexpected query or fragment (%s)", s.redacted, want)
	case name == "" || strings.Contains(name, "/"):
		return fmt.Errorf("libvirt source %s: %s", s.redacted, want)
	case s.Scheme == "libvirt" && (u.Host != "" || u.User != nil):
		return fmt.Errorf("libvirt source %s: libvirt:// is the local host; use libvirt+ssh://USER@HOST/DOMAIN or --libvirt-uri for another", s.redacted)
	case s.Scheme == "libvirt+ssh" && (u.Host == "" || u.User == nil || u.User.Username() == ""):
		return fmt.Errorf("libvirt source %s: %s", s.redacted, want)
	case s.Scheme == "libvirt+ssh" && hasPassword(u):
		return fmt.Errorf("libvirt source %s: a password does not go in the URL (use an SSH key)", s.redacted)
	}
	s.Path = name
	s.key = s.Scheme + "://" + strings.ToLower(u.Host) + "/" + name
	return nil
}
