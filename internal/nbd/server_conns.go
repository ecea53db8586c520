package nbd

import (
	"sort"
	"time"
)

// ConnInfo is one open connection of a Server.
type ConnInfo struct {
	Remote string    // the client's address (RemoteAddr; "@" or "" for an unnamed unix socket)
	Local  string    // the address it connected to (the listener's)
	Export string    // the export it uses; "" while it is in the handshake
	Since  time.Time // when the connection was accepted
}

// Connections returns the connections open now — in the handshake or
// using an export — oldest first.
func (s *Server) Connections() []ConnInfo {
	s.mu.Lock()
	out := make([]ConnInfo, 0, len(s.conns))
	for sc := range s.conns {
		out = append(out, ConnInfo{Remote: sc.raw.RemoteAddr().String(), Local: sc.raw.LocalAddr().String(),
			Export: sc.export, Since: sc.since})
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].Remote < out[j].Remote
	})
	return out
}
