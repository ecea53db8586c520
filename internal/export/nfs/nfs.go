package nfs

import (
	"os"
	"time"
)

// NFSv3 procedures (RFC 1813).
const (
	nfsNull        = 0
	nfsGetattr     = 1
	nfsSetattr     = 2
	nfsLookup      = 3
	nfsAccess      = 4
	nfsRead        = 6
	nfsWrite       = 7
	nfsCreate      = 8
	nfsMkdir       = 9
	nfsRemove      = 12
	nfsRmdir       = 13
	nfsRename      = 14
	nfsReaddir     = 16
	nfsReaddirplus = 17
	nfsFsstat      = 18
	nfsFsinfo      = 19
	nfsPathconf    = 20
	nfsCommit      = 21
)

// NFSv3 status codes.
const (
	nfs3OK             = 0
	nfs3ErrPerm        = 1
	nfs3ErrNoEnt       = 2
	nfs3ErrIO          = 5
	nfs3ErrAcces       = 13
	nfs3ErrExist       = 17
	nfs3ErrXDev        = 18
	nfs3ErrNotDir      = 20
	nfs3ErrIsDir       = 21
	nfs3ErrInval       = 22
	nfs3ErrFBig        = 27
	nfs3ErrROFS        = 30
	nfs3ErrNoSpc       = 28
	nfs3ErrNameTooLong = 63
	nfs3ErrNotEmpty    = 66
	nfs3ErrStale       = 70
	nfs3ErrBadHandle   = 10001
	nfs3ErrNotSync     = 10002
	nfs3ErrBadCookie   = 10003
	nfs3ErrNotSupp     = 10004
	nfs3ErrTooSmall    = 10005
)

// Transfer limits reported by FSINFO and enforced by READ and WRITE.
const (
	MaxRead     = 1 << 20
	MaxWrite    = 1 << 20
	prefDir     = 64 << 10
	maxDirReply = 1 << 20 // READDIR(PLUS) replies are cut to this size
	blockSize   = 4096
)

// failWords is the number of zero XDR words that follow the status of a
// failed NFSv3 result: each false post_op_attr or pre_op_attr is one word,
// a wcc_data two.
var failWords = [...]uint8{
	nfsNull: 0, nfsGetattr: 0, nfsSetattr: 2, nfsLookup: 1, nfsAccess: 1,
	5 /* READLINK */ : 1, nfsRead: 1, nfsWrite: 2, nfsCreate: 2,
	9 /* MKDIR */ : 2, 10 /* SYMLINK */ : 2, 11 /* MKNOD */ : 2,
	12 /* REMOVE */ : 2, 13 /* RMDIR */ : 2, 14 /* RENAME */ : 4, 15 /* LINK */ : 3,
	nfsReaddir: 1, nfsReaddirplus: 1, nfsFsstat: 1, nfsFsinfo: 1, nfsPathconf: 1, nfsCommit: 2,
}

func nfsReplyHint(proc uint32) int {
	if proc == nfsRead {
		return MaxRead + 256
	}
	return 512
}

// fail writes a failed result with status st.
func fail(e *encoder, proc, st uint32) {
	e.uint32(st)
	for range failWords[proc] {
		e.uint32(0)
	}
}

// nfs serves program 100003 version 3.
func (s *Server) nfs(c *rpcCall, d *decoder, e *encoder) uint32 {
	if c.proc >= uint32(len(failWords)) {
		return acceptProcUnavail
	}
	if c.proc == nfsNull {
		return acceptSuccess
	}
	if !s.allowed(c.remote) {
		fail(e, c.proc, nfs3ErrAcces)
		return acceptSuccess
	}
	s.touch(c.remote, s.exportOfArgs(*d), nil) // every procedure but NULL starts with a handle
	switch c.proc {
	case nfsGetattr, nfsLookup, nfsAccess, nfsRead, nfsReaddir, nfsReaddirplus,
		nfsFsstat, nfsFsinfo, nfsPathconf:
		return s.nfsRead(c.proc, d, e)
	case nfsSetattr, nfsWrite, nfsCreate, nfsCommit, nfsMkdir, nfsRemove, nfsRmdir, nfsRename:
		return s.nfsModify(c.proc, d, e)
	}
	fail(e, c.proc, nfs3ErrNotSupp)
	return acceptSuccess
}

// target is the object a handle resolved to.
type target struct {
	x   *export
	f   *file       // nil (and sc nil, dir ""): the export's root directory
	sc  *scratchObj // a file or directory of the export's scratch area
	dir string      // a directory the export's file names imply
}

// handleArg decodes an nfs_fh3 and resolves it; st is the NFS status to
// fail with when it does not resolve.
func (s *Server) handleArg(d *decoder) (t target, st uint32) {
	h := d.opaque(maxHandleBytes)
	if d.err != nil {
		return t, nfs3ErrBadHandle
	}
	return s.resolve(h)
}

func (s *Server) nfsRead(proc uint32, d *decoder, e *encoder) uint32 {
	t, st := s.handleArg(d)
	if d.err != nil {
		return acceptGarbageArgs
	}
	switch proc {
	case nfsGetattr:
		if st != nfs3OK {
			fail(e, proc, st)
			return acceptSuccess
		}
		e.uint32(nfs3OK)
		s.fattr(e, t)
		return acceptSuccess
	case nfsLookup:
		return s.lookup(t, st, d, e)
	case nfsAccess:
		return s.access(t, st, d, e)
	case nfsRead:
		return s.read(t, st, d, e)
	case nfsReaddir:
		return s.readdir(t, st, d, e, false)
	case nfsReaddirplus:
		return s.readdir(t, st, d, e, true)
	}
	if st != nfs3OK {
		fail(e, proc, st)
		return acceptSuccess
	}
	switch proc {
	case nfsFsstat:
		s.fsstat(t, e)
	case nfsFsinfo:
		s.fsinfo(t, e)
	case nfsPathconf:
		s.pathconf(t, e)
	}
	return acceptSuccess
}

func (s *Server) nfsModify(proc uint32, d *decoder, e *encoder) uint32 {
	t, st := s.handleArg(d)
	if d.err != nil {
		return acceptGarbageArgs
	}
	if proc >= nfsMkdir && proc <= nfsRename && (st != nfs3OK || t.x.Scratch == "") {
		if st == nfs3OK {
			st = nfs3ErrNotSupp // no scratch area: nothing can be made or removed
		}
		fail(e, proc, st)
		return acceptSuccess
	}
	switch proc {
	case nfsSetattr:
		return s.setattr(t, st, d, e)
	case nfsWrite:
		return s.write(t, st, d, e)
	case nfsCreate:
		return s.create(t, st, d, e)
	case nfsMkdir:
		return s.mkdir(t, st, d, e)
	case nfsRemove, nfsRmdir:
		return s.remove(proc, t, st, d, e)
	case nfsRename:
		return s.rename(t, st, d, e)
	}
	return s.commit(t, st, d, e)
}

// Attribute encoding.

const (
	nf3Reg = 1
	nf3Dir = 2
)

func (t target) size() int64 {
	if t.sc != nil {
		return t.sc.fi.Size()
	}
	if t.f == nil {
		return blockSize
	}
	return t.f.Size
}

func (t target) fileid() uint64 {
	if t.sc != nil {
		return t.sc.ino() &^ (1 << 63) // fixed files have bit 63 set
	}
	if t.dir != "" {
		return fileid(t.handle())
	}
	if t.f == nil {
		return fileid(t.x.root)
	}
	return t.f.fileid
}

// fattr writes a fattr3.
func (s *Server) fattr(e *encoder, t target) {
	if t.sc != nil {
		scratchFattr(e, t)
		return
	}
	if t.f == nil {
		e.uint32(nf3Dir)
		e.uint32(0o755)
		e.uint32(2) // nlink
	} else {
		e.uint32(nf3Reg)
		if t.f.WriterAt != nil {
			e.uint32(0o644)
		} else {
			e.uint32(0o444)
		}
		e.uint32(1)
	}
	e.uint32(0) // uid
	e.uint32(0) // gid
	size := uint64(t.size())
	e.uint64(size)
	e.uint64((size + blockSize - 1) &^ (blockSize - 1)) // used
	e.uint64(0)                                         // rdev
	e.uint64(t.x.fsid)
	e.uint64(t.fileid())
	tm := t.x.time
	if t.f == nil && t.x.Scratch != "" { // a directory changes with its scratch entries
		if fi, err := os.Stat(t.x.scratchPath(t.dirRel())); err == nil && fi.ModTime().After(tm) {
			tm = fi.ModTime()
		}
	}
	for range 3 {
		nfstime(e, tm)
	}
}

func nfstime(e *encoder, tm time.Time) {
	e.uint32(uint32(tm.Unix()))
	e.uint32(uint32(tm.Nanosecond()))
}

// postOpAttr writes a post_op_attr that is present.
func (s *Server) postOpAttr(e *encoder, t target) {
	e.bool(true)
	s.fattr(e, t)
}

// wcc writes a wcc_data with pre-op size and times and post-op attributes
// (of a scratch object: no pre-op attributes, the post-op ones re-read).
func (s *Server) wcc(e *encoder, t target) {
	if t.sc != nil || (t.f == nil && t.x.Scratch != "") {
		e.bool(false)
		s.postOpAttr(e, t.refresh())
		return
	}
	e.bool(true)
	e.uint64(uint64(t.size()))
	nfstime(e, t.x.time)
	nfstime(e, t.x.time)
	s.postOpAttr(e, t)
}
