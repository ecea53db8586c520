package nfs

import (
	"net/netip"
	"path"
	"strings"
)

// MOUNT v3 procedures and status codes (RFC 1813 Appendix I).
const (
	mountNull    = 0
	mountMnt     = 1
	mountDump    = 2
	mountUmnt    = 3
	mountUmntAll = 4
	mountExport  = 5

	mnt3OK       = 0
	mnt3ErrNoEnt = 2
	mnt3ErrAcces = 13
)

// mountEntry is a row of MOUNT DUMP.
type mountEntry struct {
	host netip.Addr
	dir  string
}

// maxMounts bounds the mount list MOUNT DUMP reports.
const maxMounts = 1024

func (s *Server) mount(c *rpcCall, d *decoder, e *encoder) uint32 {
	switch c.proc {
	case mountNull:
		return acceptSuccess
	case mountMnt:
		dir := d.string(maxPathLen)
		if d.err != nil {
			return acceptGarbageArgs
		}
		s.mnt(c, dir, e)
		return acceptSuccess
	case mountDump:
		if !s.allowed(c.remote) {
			e.bool(false)
			return acceptSuccess
		}
		s.mu.RLock()
		for m := range s.mounts {
			e.bool(true)
			e.string(m.host.String())
			e.string(m.dir)
		}
		s.mu.RUnlock()
		e.bool(false)
		return acceptSuccess
	case mountUmnt:
		dir := d.string(maxPathLen)
		if d.err != nil {
			return acceptGarbageArgs
		}
		s.mu.Lock()
		delete(s.mounts, mountEntry{c.remote, dir})
		s.mu.Unlock()
		if x, _ := s.mountPoint(dir); s.allowed(c.remote) && x != nil {
			unmounted := false
			s.touch(c.remote, x.Path, &unmounted)
		}
		return acceptSuccess
	case mountUmntAll:
		s.mu.Lock()
		for m := range s.mounts {
			if m.host == c.remote {
				delete(s.mounts, m)
			}
		}
		s.mu.Unlock()
		return acceptSuccess
	case mountExport:
		// Clients outside Allow see no exports.
		if s.allowed(c.remote) {
			groups := s.allowGroups()
			for _, x := range s.exportList() {
				e.bool(true)
				e.string(x.Path)
				for _, g := range groups {
					e.bool(true)
					e.string(g)
				}
				e.bool(false)
			}
		}
		e.bool(false)
		return acceptSuccess
	}
	return acceptProcUnavail
}

func (s *Server) mnt(c *rpcCall, dir string, e *encoder) {
	if !s.allowed(c.remote) {
		s.log.Info("nfs: mount refused", "remote", c.remote.String(), "path", dir)
		e.uint32(mnt3ErrAcces)
		return
	}
	x, handle := s.mountPoint(dir)
	if x == nil {
		e.uint32(mnt3ErrNoEnt)
		return
	}
	s.mu.Lock()
	if len(s.mounts) < maxMounts {
		s.mounts[mountEntry{c.remote, dir}] = struct{}{}
	}
	s.mu.Unlock()
	mounted := true
	s.touch(c.remote, x.Path, &mounted) // a directory's mount is a client of its export
	e.uint32(mnt3OK)
	e.opaque(handle)
	e.uint32(2) // auth flavors
	e.uint32(authSys)
	e.uint32(authNone)
}

// mountPoint resolves a MOUNT path: an export, or a directory in one (as
// Linux's nfsd allows; libnfs mounts the directory of the file it opens).
func (s *Server) mountPoint(dir string) (*export, []byte) {
	if x := s.lookupPath(dir); x != nil {
		return x, x.root
	}
	parent, name := path.Split(dir)
	x := s.lookupPath(strings.TrimSuffix(parent, "/"))
	if x == nil || name == "" {
		return nil, nil
	}
	t, st := target{x: x}.child(name)
	if st != nfs3OK || !t.isDir() || name == "." || name == ".." {
		return nil, nil
	}
	return x, t.handle()
}
