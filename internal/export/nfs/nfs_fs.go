package nfs

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
	e.uint32(nfs3OK)
	s.postOpAttr(e, t)
	e.uint64(total)                      // tbytes
	e.uint64(0)                          // fbytes
	e.uint64(0)                          // abytes
	e.uint64(uint64(len(t.x.files)) + 1) // tfiles
	e.uint64(0)                          // ffiles
	e.uint64(0)                          // afiles
	e.uint32(0)                          // invarsec
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
