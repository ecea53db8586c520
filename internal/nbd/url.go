package nbd

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// URL is a parsed NBD URI (the form used by qemu and libnbd):
//
//	nbd://host[:port]/export          plain TCP (port 10809 by default)
//	nbds://host[:port]/export         TCP upgraded with NBD_OPT_STARTTLS
//	nbd+unix:///export?socket=/path   unix domain socket
//	nbds+unix:///export?socket=/path  unix socket with TLS
//
// The export name is the path without its leading "/", percent-decoded;
// an empty path names the default export "".
type URL struct {
	TLS     bool
	Network string // "tcp" or "unix"
	Address string // host:port or socket path
	Host    string // host name for TLS verification (empty for unix)
	Export  string
}

// ParseURL parses an NBD URI.
func ParseURL(raw string) (URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return URL{}, fmt.Errorf("nbd: parse url: %w", err)
	}
	var out URL
	switch u.Scheme {
	case "nbd", "nbds":
		out.Network = "tcp"
	case "nbd+unix", "nbds+unix":
		out.Network = "unix"
	default:
		return URL{}, fmt.Errorf("nbd: url %q: unsupported scheme %q", raw, u.Scheme)
	}
	out.TLS = strings.HasPrefix(u.Scheme, "nbds")
	out.Export = strings.TrimPrefix(u.Path, "/")
	if len(out.Export) > maxStringLen {
		return URL{}, fmt.Errorf("nbd: url %q: export name longer than %d bytes", raw, maxStringLen)
	}
	if out.Network == "unix" {
		return parseUnixURL(raw, u, out)
	}
	return parseTCPURL(raw, u, out)
}

func parseTCPURL(raw string, u *url.URL, out URL) (URL, error) {
	if u.Hostname() == "" {
		return URL{}, fmt.Errorf("nbd: url %q: missing host", raw)
	}
	port := u.Port()
	if port == "" {
		port = strconv.Itoa(DefaultPort)
	} else if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return URL{}, fmt.Errorf("nbd: url %q: bad port %q", raw, port)
	}
	if len(u.Query()) > 0 {
		return URL{}, fmt.Errorf("nbd: url %q: unexpected query for TCP", raw)
	}
	out.Host = u.Hostname()
	out.Address = net.JoinHostPort(out.Host, port)
	return out, nil
}

func parseUnixURL(raw string, u *url.URL, out URL) (URL, error) {
	if u.Host != "" {
		return URL{}, fmt.Errorf("nbd: url %q: unix URL must not name a host", raw)
	}
	q := u.Query()
	sock := q.Get("socket")
	if sock == "" {
		return URL{}, fmt.Errorf("nbd: url %q: missing socket= parameter", raw)
	}
	for k := range q {
		if k != "socket" {
			return URL{}, fmt.Errorf("nbd: url %q: unknown parameter %q", raw, k)
		}
	}
	out.Address = sock
	return out, nil
}

// String formats the URL back into URI form.
func (u URL) String() string {
	scheme := "nbd"
	if u.TLS {
		scheme = "nbds"
	}
	path := "/" + url.PathEscape(u.Export)
	if u.Network == "unix" {
		return scheme + "+unix://" + path + "?socket=" + url.QueryEscape(u.Address)
	}
	return scheme + "://" + u.Address + path
}
