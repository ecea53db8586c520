package nfs

import (
	"encoding/binary"
	"errors"
	"io"
)

// stable_how values.
const (
	unstable = 0
	dataSync = 1
	fileSync = 2
)

func (s *Server) read(t target, st uint32, d *decoder, e *encoder) uint32 {
	off, count := d.uint64(), d.uint32()
	if d.err != nil {
		return acceptGarbageArgs
	}
	if st == nfs3OK && t.isDir() {
		st = nfs3ErrIsDir
	}
	if st != nfs3OK {
		fail(e, nfsRead, st)
		return acceptSuccess
	}
	if t.sc != nil {
		return s.scratchRead(t, off, count, e)
	}
	size := uint64(t.f.Size)
	n := uint64(min(count, MaxRead))
	if off >= size {
		n = 0
	} else {
		n = min(n, size-off)
	}
	start := len(e.b)
	e.uint32(nfs3OK)
	s.postOpAttr(e, t)
	e.uint32(uint32(n))
	e.bool(off+n >= size)
	e.uint32(uint32(n))
	p := len(e.b)
	e.b = append(e.b, make([]byte, pad(int(n)))...)
	if n > 0 {
		got, err := t.f.ReaderAt.ReadAt(e.b[p:p+int(n)], int64(off))
		if err != nil && !errors.Is(err, io.EOF) || got < int(n) && err == nil {
			s.log.Warn("nfs: read failed", "export", t.x.Path, "file", t.f.Name, "offset", off, "err", err)
			e.b = e.b[:start]
			fail(e, nfsRead, nfs3ErrIO)
			return acceptSuccess
		}
		// A ReaderAt shorter than Size reads as zeros (e.b is zeroed).
		_ = got
	}
	return acceptSuccess
}

func (s *Server) write(t target, st uint32, d *decoder, e *encoder) uint32 {
	off, count, stable := d.uint64(), d.uint32(), d.uint32()
	data := d.opaque(MaxRecordSize)
	if d.err != nil || stable > fileSync {
		return acceptGarbageArgs
	}
	if st == nfs3OK && t.sc != nil {
		return s.scratchWrite(t, off, count, stable, data, e)
	}
	if st == nfs3OK {
		st = writeStatus(t, off, count, len(data))
	}
	if st != nfs3OK {
		fail(e, nfsWrite, st)
		return acceptSuccess
	}
	data = data[:count]
	if _, err := t.f.WriterAt.WriteAt(data, int64(off)); err != nil {
		s.log.Warn("nfs: write failed", "export", t.x.Path, "file", t.f.Name, "offset", off, "err", err)
		fail(e, nfsWrite, nfs3ErrIO)
		return acceptSuccess
	}
	if stable != unstable && t.f.Flush != nil {
		if err := t.f.Flush(); err != nil {
			s.log.Warn("nfs: flush failed", "export", t.x.Path, "file", t.f.Name, "err", err)
			fail(e, nfsWrite, nfs3ErrIO)
			return acceptSuccess
		}
	}
	e.uint32(nfs3OK)
	s.wcc(e, t)
	e.uint32(count)
	e.uint32(stable)
	e.fixed(s.verf[:])
	return acceptSuccess
}

func writeStatus(t target, off uint64, count uint32, have int) uint32 {
	switch {
	case t.f == nil:
		return nfs3ErrIsDir
	case t.f.WriterAt == nil:
		return nfs3ErrROFS
	case int64(count) > int64(have) || count > MaxWrite:
		return nfs3ErrInval
	case off > uint64(t.f.Size) || uint64(count) > uint64(t.f.Size)-off:
		return nfs3ErrFBig // files have a fixed size
	}
	return nfs3OK
}

func (s *Server) commit(t target, st uint32, d *decoder, e *encoder) uint32 {
	d.uint64() // offset
	d.uint32() // count
	if d.err != nil {
		return acceptGarbageArgs
	}
	if st == nfs3OK && t.isDir() {
		st = nfs3ErrIsDir
	}
	if st == nfs3OK && t.sc != nil {
		st = t.scratchSync()
	} else if st == nfs3OK && t.f.Flush != nil {
		if err := t.f.Flush(); err != nil {
			s.log.Warn("nfs: flush failed", "export", t.x.Path, "file", t.f.Name, "err", err)
			st = nfs3ErrIO
		}
	}
	if st != nfs3OK {
		fail(e, nfsCommit, st)
		return acceptSuccess
	}
	e.uint32(nfs3OK)
	s.wcc(e, t)
	e.fixed(s.verf[:])
	return acceptSuccess
}

// sattr3: of the fixed files only a size can be refused; scratch objects
// take mode, size and times (owners are ignored).
type sattr struct {
	setMode      bool
	mode         uint32
	setSize      bool
	size         uint64
	atime, mtime setTime
}

// setTime is a time_how with its time: DONT_CHANGE (0),
// SET_TO_SERVER_TIME (1), SET_TO_CLIENT_TIME (2).
type setTime struct {
	how       uint32
	sec, nsec uint32
}

func sattrArg(d *decoder) sattr {
	var a sattr
	if a.setMode = d.bool(); a.setMode {
		a.mode = d.uint32()
	}
	for range 2 { // uid, gid
		if d.bool() {
			d.uint32()
		}
	}
	if a.setSize = d.bool(); a.setSize {
		a.size = d.uint64()
	}
	for _, tm := range []*setTime{&a.atime, &a.mtime} {
		switch tm.how = d.uint32(); tm.how {
		case 0, 1:
		case 2:
			tm.sec, tm.nsec = d.uint32(), d.uint32()
		default:
			d.fail()
		}
	}
	return a
}

// apply checks a sattr3 against t: mode, owner and time changes are
// accepted without effect, size changes are refused. One exception:
// truncating a writable file to 0 is accepted and ignored (the size and
// the bytes stay), because libnfs's nfs_creat (nfs-cp's destination)
// truncates the file it opens before writing all of it again.
func (a sattr) apply(t target) uint32 {
	switch {
	case !a.setSize || (t.f != nil && a.size == uint64(t.f.Size)):
		return nfs3OK
	case t.f != nil && t.f.WriterAt != nil && a.size == 0:
		return nfs3OK
	case t.f == nil:
		return nfs3ErrIsDir
	case t.f.WriterAt == nil:
		return nfs3ErrROFS
	}
	return nfs3ErrInval
}

func (s *Server) setattr(t target, st uint32, d *decoder, e *encoder) uint32 {
	a := sattrArg(d)
	var ctime uint64
	check := d.bool()
	if check {
		ctime = d.uint64()
	}
	if d.err != nil {
		return acceptGarbageArgs
	}
	if st == nfs3OK && check && ctime != t.ctime() {
		st = nfs3ErrNotSync
	}
	switch {
	case st == nfs3OK && t.sc != nil:
		st = s.scratchSetattr(t, a)
	case st == nfs3OK:
		st = a.apply(t)
	}
	if st != nfs3OK {
		fail(e, nfsSetattr, st)
		return acceptSuccess
	}
	e.uint32(nfs3OK)
	s.wcc(e, t)
	return acceptSuccess
}

// create modes.
const (
	createUnchecked = 0
	createGuarded   = 1
	createExclusive = 2
)

// create opens an existing file the way an UNCHECKED create does; new
// names cannot be created (NFS3ERR_NOTSUPP). Deviation from RFC 1813: a
// GUARDED create of an existing writable file succeeds too, because
// libnfs's nfs_creat (nfs-cp's destination) sends GUARDED without O_EXCL;
// EXCLUSIVE and GUARDED creates of other existing names fail with
// NFS3ERR_EXIST.
func (s *Server) create(t target, st uint32, d *decoder, e *encoder) uint32 {
	name, nst := nameArg(d)
	mode := d.uint32()
	var a sattr
	switch mode {
	case createUnchecked, createGuarded:
		a = sattrArg(d)
	case createExclusive:
		if v := d.fixed(8); len(v) == 8 { // the verifier is kept as the new file's times
			a.atime = setTime{how: 2, sec: binary.BigEndian.Uint32(v[:4])}
			a.mtime = setTime{how: 2, sec: binary.BigEndian.Uint32(v[4:])}
		}
	default:
		d.fail()
	}
	if d.err != nil {
		return acceptGarbageArgs
	}
	if st == nfs3OK {
		st = nst
	}
	var obj target
	if st == nfs3OK {
		obj, st = t.child(name)
	}
	if (st == nfs3OK && obj.sc != nil) || (st == nfs3ErrNoEnt && t.x.Scratch != "") {
		return s.scratchCreate(t, name, mode, a, e)
	}
	switch {
	case st == nfs3ErrNoEnt:
		st = nfs3ErrNotSupp
	case st != nfs3OK:
	case obj.f == nil || mode == createExclusive ||
		mode == createGuarded && obj.f.WriterAt == nil:
		st = nfs3ErrExist
	default:
		st = a.apply(obj)
	}
	if st != nfs3OK {
		fail(e, nfsCreate, st)
		return acceptSuccess
	}
	e.uint32(nfs3OK)
	e.bool(true)
	e.opaque(obj.handle())
	s.postOpAttr(e, obj)
	s.wcc(e, t)
	return acceptSuccess
}
