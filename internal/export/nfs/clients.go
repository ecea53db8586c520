package nfs

import (
	"net/netip"
	"sort"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// Client is a client of the exports as the Server saw it. NFSv3 has no
// sessions: a client is known by its address, by the NFS connections it
// holds open and by its requests (and MOUNT calls), per export.
type Client struct {
	Addr      netip.Addr
	Export    string    // the export path it used; "" for a connection that named none yet
	Since     time.Time // first seen (connection, MOUNT or request)
	Last      time.Time // last request or MOUNT on the export (zero: none yet)
	Connected bool      // it holds an NFS TCP connection open now
	Mounted   bool      // it mounted the export and did not unmount it
}

// maxClients bounds the clients the Server remembers; the least recently
// active are forgotten first.
const maxClients = 4096

// clientKey is a client address on one export ("" for none yet).
type clientKey struct {
	addr   netip.Addr
	export string
}

// clientState is what the Server remembers of a client on an export.
type clientState struct {
	since, last time.Time
	mounted     bool
	unmounted   bool // its last call was UMNT: it said it is done
}

// connState counts a client address's open NFS connections.
type connState struct {
	n     int
	since time.Time
}

func (s *Server) now() time.Time { return clock.Or(s.opts.Clock).Now() }

// Clients returns the clients that hold an NFS connection open now or
// used an export (a request or MOUNT) within the last window — unless
// their last call on it was UMNT — by address and export.
func (s *Server) Clients(window time.Duration) []Client {
	now := s.now()
	s.cmu.Lock()
	defer s.cmu.Unlock()
	var out []Client
	named := map[netip.Addr]bool{}
	for k, st := range s.clients {
		conn := s.conns[k.addr]
		if conn.n == 0 && (st.unmounted || now.Sub(st.last) > window) {
			continue
		}
		named[k.addr] = true
		out = append(out, Client{Addr: k.addr, Export: k.export, Since: st.since, Last: st.last,
			Connected: conn.n > 0, Mounted: st.mounted})
	}
	for a, conn := range s.conns {
		if !named[a] {
			out = append(out, Client{Addr: a, Since: conn.since, Connected: true})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Addr != out[j].Addr {
			return out[i].Addr.Less(out[j].Addr)
		}
		return out[i].Export < out[j].Export
	})
	return out
}

// touch records a call of an allowed client on export: a request (mount
// nil), MNT (*mount true) or UMNT (*mount false).
func (s *Server) touch(a netip.Addr, export string, mount *bool) {
	now := s.now()
	k := clientKey{a, export}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	st := s.clients[k]
	if st == nil {
		if len(s.clients) >= maxClients {
			s.forgetOldestLocked()
		}
		st = &clientState{since: now}
		s.clients[k] = st
	}
	st.last = now
	st.unmounted = false
	if mount != nil {
		st.mounted, st.unmounted = *mount, !*mount
	}
}

func (s *Server) forgetOldestLocked() {
	var oldest clientKey
	var t time.Time
	for k, st := range s.clients {
		if t.IsZero() || st.last.Before(t) {
			oldest, t = k, st.last
		}
	}
	delete(s.clients, oldest)
}

// connOpened and connClosed count a client's NFS TCP connections.
func (s *Server) connOpened(a netip.Addr) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	c := s.conns[a]
	if c.n == 0 {
		c.since = s.now()
	}
	c.n++
	s.conns[a] = c
}

func (s *Server) connClosed(a netip.Addr) {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	c := s.conns[a]
	if c.n--; c.n <= 0 {
		delete(s.conns, a)
		return
	}
	s.conns[a] = c
}

// exportOfArgs returns the path of the export the file handle that starts
// an NFS call's arguments belongs to ("" if it names none).
func (s *Server) exportOfArgs(d decoder) string {
	h := d.opaque(maxHandleBytes)
	if d.err != nil || len(h) < rootHandleLen || h[0] != handleVersion {
		return ""
	}
	var id [exportHashLen]byte
	copy(id[:], h[1:])
	s.mu.RLock()
	defer s.mu.RUnlock()
	if x := s.exports[id]; x != nil {
		return x.Path
	}
	return ""
}
