package instant

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// NFSActiveWindow is how long an NFS client counts as connected after its
// last request when it holds no NFS connection open (NFSv3 has no
// sessions; Options.NFSActive overrides it).
const NFSActiveWindow = 2 * time.Minute

// Client is a client of a session's exports other than the session's own
// VM: an NBD connection, or an NFS client (an address that holds an NFS
// connection open or used the export within the NFS window).
type Client struct {
	Protocol  string    `json:"protocol"` // "nbd" or "nfs"
	Addr      string    `json:"address"`  // NBD: host:port; NFS: host
	Export    string    `json:"export"`   // NBD export name, NFS export path; "" while an NBD client is in the handshake
	Since     time.Time `json:"since"`
	Last      time.Time `json:"last_active,omitzero"` // NFS: its last request
	Connected bool      `json:"connected"`            // NBD: always; NFS: it holds a connection open
}

func (c Client) String() string {
	exp := c.Export
	if exp == "" {
		exp = "handshake"
	}
	s := fmt.Sprintf("%s %s (%s, since %s", c.Protocol, c.Addr, exp, c.Since.UTC().Format(time.DateTime))
	if !c.Connected && !c.Last.IsZero() {
		s += ", last active " + c.Last.UTC().Format(time.DateTime)
	}
	return s + " UTC)"
}

// ErrInUse means a session still has clients: stopping it (or migrating
// it offline) would cut them off. InUseError names them.
var ErrInUse = errors.New("in use")

// InUseError is ErrInUse with the session and its clients.
type InUseError struct {
	Session string
	Clients []Client
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("session %s is in use by %s; stopping it would cut them off "+
		"(wait until they disconnect, or force it with --force)", e.Session, DescribeClients(e.Clients))
}

// DescribeClients names clients for a message: "2 client(s): nbd
// 10.0.0.5:40312 (disk-0, since …); nfs 10.0.0.6 (/holdfast/ir-…, since …)".
func DescribeClients(cs []Client) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.String()
	}
	return fmt.Sprintf("%d client(s): %s", len(cs), strings.Join(names, "; "))
}

func (e *InUseError) Unwrap() error { return ErrInUse }

// clients lists the session's clients now, leaving out its own VM (it
// reaches the NBD exports on the session's private socket).
func (s *session) clients() []Client {
	out := []Client{}
	if s.nbd != nil {
		for _, c := range s.nbd.Connections() {
			if s.vmSocket != "" && c.Local == s.vmSocket {
				continue
			}
			out = append(out, Client{Protocol: "nbd", Addr: c.Remote, Export: c.Export, Since: c.Since, Connected: true})
		}
	}
	if s.nfs != nil {
		window := s.o.NFSActive
		if window <= 0 {
			window = NFSActiveWindow
		}
		for _, c := range s.nfs.Clients(window) {
			out = append(out, Client{Protocol: "nfs", Addr: c.Addr.String(), Export: c.Export, Since: c.Since,
				Last: c.Last, Connected: c.Connected})
		}
	}
	return out
}
