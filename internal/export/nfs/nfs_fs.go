package nfs

import "syscall"

// FSINFO properties.
const (
	fsf3Homogeneous = 0x08
	fsf3CanSetTime  = 0x10
)

func (s *Server) fsstat(t target, e *encoder) {
	var total uint64
	for _, f := range t.x.files {
		total += uint64(f.Size)
	}
	// A scratch area reports its file system's free space (ESXi checks
	// it before it creates a VM's swap file).
	var free, avail, ffree, afree uint64
	var st syscall.Statfs_t
	if t.x.Scratch != "" && syscall.Statfs(t.x.Scratch, &st) == nil {
		bs := uint64(st.Bsize)
		free, avail, ffree, afree = st.Bfree*bs, st.Bavail*bs, st.Ffree, st.Ffree
		total += st.Blocks * bs
	}
	e.uint32(nfs3OK)
	s.postOpAttr(e, t)
	e.uint64(total)                              // tbytes
	e.uint64(free)                               // fbytes
	e.uint64(avail)                              // abytes
	e.uint64(uint64(len(t.x.files)) + 1 + ffree) // tfiles
	e.uint64(ffree)                              // ffiles
	e.uint64(afree)                              // afiles
	e.uint32(0)                                  // invarsec
}

func (s *Server) fsinfo(t target, e *encoder) {
	e.uint32(nfs3OK)
	s.postOpAttr(e, t)
	e.uint32(MaxRead)   // rtmax
	e.uint32(MaxRead)   // rtpref
	e.uint32(blockSize) // rtmult
	e.uint32(MaxWrite)  // wtmax
	e.uint32(MaxWrite)  // wtpref
	e.uint32(blockSize) // wtmult
	e.uint32(prefDir)   // dtpref
	e.uint64(1<<63 - 1) // maxfilesize
	e.uint32(0)         // time_delta: 1 ns
	e.uint32(1)
	e.uint32(fsf3Homogeneous | fsf3CanSetTime)
}

func (s *Server) pathconf(t target, e *encoder) {
	e.uint32(nfs3OK)
	s.postOpAttr(e, t)
	e.uint32(1)          // linkmax
	e.uint32(maxNameLen) // name_max
	e.bool(true)         // no_trunc
	e.bool(true)         // chown_restricted
	e.bool(false)        // case_insensitive
	e.bool(true)         // case_preserving
}
