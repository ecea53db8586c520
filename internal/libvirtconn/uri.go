package libvirtconn

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// endpoint is where a connection URI leads: libvirtd's unix socket, on
// this host or, with ssh set, on the host an SSH connection reaches.
type endpoint struct {
	socket string
	ssh    *sshTarget
}

// sshTarget is the SSH part of a qemu+ssh URI.
type sshTarget struct {
	user string // "" means the local user
	// addr is host:port (port 22 unless the URI names one).
	addr string
	// keyFile and knownHosts come from keyfile= and known_hosts= ("" means
	// the defaults under ~/.ssh).
	keyFile, knownHosts string
}

// sshParams are the query parameters of a qemu+ssh URI Holdfast honours;
// libvirt's others (command=, netcat=, proxy=, no_verify=1, …) are refused
// rather than silently ignored.
var sshParams = map[string]bool{"socket": true, "keyfile": true, "known_hosts": true, "no_verify": true, "known_hosts_verify": true}

// parseURI reads a connection URI: "qemu:///system",
// "qemu+unix:///system?socket=PATH" or
// "qemu+ssh://[USER@]HOST[:PORT]/system[?socket=PATH&keyfile=FILE&known_hosts=FILE]".
func parseURI(uri string) (endpoint, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return endpoint{}, fmt.Errorf("%w: %s: bad URI", ErrUnsupportedURI, Redact(uri))
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme == "qemu+ssh" {
		return parseSSH(uri, u)
	}
	if u.Host != "" || u.Path != "/system" {
		return endpoint{}, fmt.Errorf("%w: %s (only the local qemu:///system, qemu+unix:///system?socket=PATH and qemu+ssh://USER@HOST/system are supported)",
			ErrUnsupportedURI, Redact(uri))
	}
	switch scheme {
	case "qemu":
		if u.RawQuery != "" {
			return endpoint{}, fmt.Errorf("%w: %s: unexpected query", ErrUnsupportedURI, Redact(uri))
		}
		return endpoint{socket: DefaultSocket}, nil
	case "qemu+unix":
		if s := u.Query().Get("socket"); s != "" {
			return endpoint{socket: s}, nil
		}
		return endpoint{socket: DefaultSocket}, nil
	}
	return endpoint{}, fmt.Errorf("%w: %s (only qemu:///system, qemu+unix:///system?socket=PATH and qemu+ssh://USER@HOST/system are supported)",
		ErrUnsupportedURI, Redact(uri))
}

func parseSSH(uri string, u *url.URL) (endpoint, error) {
	bad := func(why string) (endpoint, error) {
		return endpoint{}, fmt.Errorf("%w: %s: %s", ErrUnsupportedURI, Redact(uri), why)
	}
	if u.Hostname() == "" {
		return bad("no host (want qemu+ssh://USER@HOST[:PORT]/system)")
	}
	if u.Path != "/system" {
		return bad("only the /system daemon is supported")
	}
	if _, ok := u.User.Password(); ok {
		return bad("a password does not go in the URI: use ssh-agent or keyfile=")
	}
	q := u.Query()
	for k := range q {
		if !sshParams[k] {
			return bad(fmt.Sprintf("parameter %s is not supported (socket, keyfile, known_hosts are)", k))
		}
	}
	if v := q.Get("no_verify"); v != "" && v != "0" {
		return bad("no_verify: Holdfast always checks the host key against known_hosts")
	}
	if v := q.Get("known_hosts_verify"); v != "" && v != "normal" {
		return bad("known_hosts_verify=" + v + ": Holdfast always checks the host key against known_hosts (normal)")
	}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	ep := endpoint{socket: DefaultSocket, ssh: &sshTarget{user: u.User.Username(), addr: net.JoinHostPort(u.Hostname(), port),
		keyFile: q.Get("keyfile"), knownHosts: q.Get("known_hosts")}}
	if s := q.Get("socket"); s != "" {
		ep.socket = s
	}
	return ep, nil
}

// Socket returns the unix socket of libvirtd a connection URI names, on
// the host the URI leads to: "qemu:///system" (the default socket),
// "qemu+unix:///system?socket=PATH" or
// "qemu+ssh://USER@HOST[:PORT]/system[?socket=PATH]" (a socket on HOST).
func Socket(uri string) (string, error) {
	ep, err := parseURI(uri)
	return ep.socket, err
}

// Remote reports whether uri leads to another host (qemu+ssh).
func Remote(uri string) bool {
	ep, err := parseURI(uri)
	return err == nil && ep.ssh != nil
}
