package nfs

import (
	"net"
	"slices"
)

// Program numbers and versions.
const (
	progPortmap = 100000
	progNFS     = 100003
	progMount   = 100005

	versPortmap = 2
	versNFS     = 3
	versMount   = 3

	protoTCP = 6
	protoUDP = 17
)

func progVersion(prog uint32) uint32 {
	switch prog {
	case progPortmap:
		return versPortmap
	case progMount:
		return versMount
	}
	return versNFS
}

func progName(prog uint32) string {
	switch prog {
	case progPortmap:
		return "portmap"
	case progMount:
		return "mount"
	}
	return "nfs"
}

// Portmapper v2 procedures (RFC 1833 §3).
const (
	pmapNull    = 0
	pmapSet     = 1
	pmapUnset   = 2
	pmapGetport = 3
	pmapDump    = 4
)

// mapping is a portmapper registration key.
type mapping struct{ prog, vers, prot uint32 }

// registerBuiltins registers the services Serve offers on l.
func (s *Server) registerBuiltins(l Listeners) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reg := func(prog, vers, prot uint32, a net.Addr) {
		switch v := a.(type) {
		case *net.TCPAddr:
			s.pmap[mapping{prog, vers, prot}] = uint32(v.Port)
		case *net.UDPAddr:
			s.pmap[mapping{prog, vers, prot}] = uint32(v.Port)
		}
	}
	if l.PortmapTCP != nil {
		reg(progPortmap, versPortmap, protoTCP, l.PortmapTCP.Addr())
	}
	if l.PortmapUDP != nil {
		reg(progPortmap, versPortmap, protoUDP, l.PortmapUDP.LocalAddr())
	}
	if l.MountTCP != nil {
		reg(progMount, versMount, protoTCP, l.MountTCP.Addr())
	}
	if l.MountUDP != nil {
		reg(progMount, versMount, protoUDP, l.MountUDP.LocalAddr())
	}
	if l.NFSTCP != nil {
		reg(progNFS, versNFS, protoTCP, l.NFSTCP.Addr())
	}
}

// maxMappings bounds registrations made with SET.
const maxMappings = 256

func (s *Server) portmap(c *rpcCall, d *decoder, e *encoder) uint32 {
	switch c.proc {
	case pmapNull:
		return acceptSuccess
	case pmapSet, pmapUnset, pmapGetport:
		m := mapping{d.uint32(), d.uint32(), d.uint32()}
		port := d.uint32()
		if d.err != nil {
			return acceptGarbageArgs
		}
		switch c.proc {
		case pmapGetport:
			s.mu.RLock()
			e.uint32(s.pmap[m])
			s.mu.RUnlock()
		case pmapSet:
			e.bool(s.pmapSet(c, m, port))
		default:
			e.bool(s.pmapUnset(c, m))
		}
		return acceptSuccess
	case pmapDump:
		s.mu.RLock()
		keys := make([]mapping, 0, len(s.pmap))
		for m := range s.pmap {
			keys = append(keys, m)
		}
		slices.SortFunc(keys, func(a, b mapping) int {
			if a.prog != b.prog {
				return int(int64(a.prog) - int64(b.prog))
			}
			if a.vers != b.vers {
				return int(int64(a.vers) - int64(b.vers))
			}
			return int(int64(a.prot) - int64(b.prot))
		})
		for _, m := range keys {
			e.bool(true)
			e.uint32(m.prog)
			e.uint32(m.vers)
			e.uint32(m.prot)
			e.uint32(s.pmap[m])
		}
		s.mu.RUnlock()
		e.bool(false)
		return acceptSuccess
	}
	return acceptProcUnavail
}

// pmapSet registers a mapping: loopback callers only, never over an
// existing one (RFC 1833).
func (s *Server) pmapSet(c *rpcCall, m mapping, port uint32) bool {
	if !c.remote.IsLoopback() || port == 0 || port > 65535 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pmap[m]; ok || len(s.pmap) >= maxMappings {
		return false
	}
	s.pmap[m] = port
	return true
}

// pmapUnset removes all protocols of (prog, vers): loopback callers only.
func (s *Server) pmapUnset(c *rpcCall, m mapping) bool {
	if !c.remote.IsLoopback() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for k := range s.pmap {
		if k.prog == m.prog && k.vers == m.vers {
			delete(s.pmap, k)
			found = true
		}
	}
	return found
}
