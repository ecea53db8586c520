package nfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// scratchFattr writes the fattr3 of a scratch object from its stat.
func scratchFattr(e *encoder, t target) {
	fi := t.sc.fi
	if fi.IsDir() {
		e.uint32(nf3Dir)
	} else {
		e.uint32(nf3Reg)
	}
	e.uint32(uint32(fi.Mode().Perm()))
	st, _ := fi.Sys().(*syscall.Stat_t)
	var nlink, used uint64 = 1, uint64(fi.Size())
	atime, ctime := fi.ModTime(), fi.ModTime()
	if st != nil {
		nlink, used = uint64(st.Nlink), uint64(st.Blocks)*512
		atime, ctime = time.Unix(st.Atim.Unix()), time.Unix(st.Ctim.Unix())
	}
	e.uint32(uint32(nlink))
	e.uint32(0) // uid
	e.uint32(0) // gid
	e.uint64(uint64(fi.Size()))
	e.uint64(used)
	e.uint64(0) // rdev
	e.uint64(t.x.fsid)
	e.uint64(t.fileid())
	nfstime(e, atime)
	nfstime(e, fi.ModTime())
	nfstime(e, ctime)
}

// ctime is t's ctime as nfstime3 encodes it (sec<<32 | nsec), for the
// SETATTR guard.
func (t target) ctime() uint64 {
	tm := t.x.time
	if t.sc != nil {
		tm = t.sc.fi.ModTime()
		if st, ok := t.sc.fi.Sys().(*syscall.Stat_t); ok {
			tm = time.Unix(st.Ctim.Unix())
		}
	}
	return uint64(uint32(tm.Unix()))<<32 | uint64(tm.Nanosecond())
}

func (s *Server) scratchRead(t target, off uint64, count uint32, e *encoder) uint32 {
	f, err := t.openScratch(os.O_RDONLY)
	if err != nil {
		fail(e, nfsRead, errStatus(err))
		return acceptSuccess
	}
	defer f.Close()
	n := min(count, MaxRead)
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, int64(min(off, 1<<62)))
	if err != nil && !errors.Is(err, io.EOF) {
		fail(e, nfsRead, errStatus(err))
		return acceptSuccess
	}
	t = t.refresh()
	e.uint32(nfs3OK)
	s.postOpAttr(e, t)
	e.uint32(uint32(got))
	e.bool(off+uint64(got) >= uint64(t.sc.fi.Size()))
	e.opaque(buf[:got])
	return acceptSuccess
}

func (s *Server) scratchWrite(t target, off uint64, count, stable uint32, data []byte, e *encoder) uint32 {
	st := uint32(nfs3OK)
	switch {
	case t.sc.fi.IsDir():
		st = nfs3ErrIsDir
	case int64(count) > int64(len(data)) || count > MaxWrite:
		st = nfs3ErrInval
	case off > 1<<62:
		st = nfs3ErrFBig
	}
	if st == nfs3OK {
		st = writeScratch(t, int64(off), data[:count], stable != unstable)
	}
	if st != nfs3OK {
		fail(e, nfsWrite, st)
		return acceptSuccess
	}
	e.uint32(nfs3OK)
	s.wcc(e, t)
	e.uint32(count)
	e.uint32(stable)
	e.fixed(s.verf[:])
	return acceptSuccess
}

func writeScratch(t target, off int64, data []byte, sync bool) uint32 {
	f, err := t.openScratch(os.O_WRONLY)
	if err != nil {
		return errStatus(err)
	}
	_, err = f.WriteAt(data, off)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return errStatus(err)
}

// scratchSync makes a scratch file's data stable (COMMIT).
func (t target) scratchSync() uint32 {
	if t.sc.fi.IsDir() {
		return nfs3ErrIsDir
	}
	f, err := t.openScratch(os.O_RDONLY)
	if err != nil {
		return errStatus(err)
	}
	err = f.Sync()
	f.Close()
	return errStatus(err)
}

// scratchSetattr applies mode, size and times to a scratch object.
func (s *Server) scratchSetattr(t target, a sattr) uint32 {
	p := t.x.scratchPath(t.sc.rel)
	if a.setSize {
		if t.sc.fi.IsDir() {
			return nfs3ErrIsDir
		}
		if a.size > 1<<62 {
			return nfs3ErrFBig
		}
		f, err := t.openScratch(os.O_WRONLY)
		if err != nil {
			return errStatus(err)
		}
		err = f.Truncate(int64(a.size))
		f.Close()
		if err != nil {
			return errStatus(err)
		}
	}
	if a.setMode {
		if err := os.Chmod(p, fs.FileMode(a.mode&0o777)); err != nil {
			return errStatus(err)
		}
	}
	if a.atime.how != 0 || a.mtime.how != 0 {
		now := clock.Or(s.opts.Clock).Now()
		at, mt := a.atime.resolve(now, t.sc.fi.ModTime()), a.mtime.resolve(now, t.sc.fi.ModTime())
		if err := os.Chtimes(p, at, mt); err != nil {
			return errStatus(err)
		}
	}
	return nfs3OK
}

func (tm setTime) resolve(now, keep time.Time) time.Time {
	switch tm.how {
	case 1:
		return now
	case 2:
		return time.Unix(int64(tm.sec), int64(tm.nsec))
	}
	return keep
}

// scratchCreate creates (or, UNCHECKED and GUARDED, opens) file name in
// directory t.
func (s *Server) scratchCreate(t target, name string, mode uint32, a sattr, e *encoder) uint32 {
	st := t.newName(name)
	var obj target
	if st == nfs3OK {
		// As for the fixed files, a GUARDED create of an existing file
		// opens it: libnfs's nfs_creat sends GUARDED without O_EXCL.
		flag := os.O_RDWR | os.O_CREATE | syscall.O_NOFOLLOW
		if mode == createExclusive {
			flag |= os.O_EXCL
		}
		p := t.x.scratchPath(path.Join(t.dirRel(), name))
		f, err := os.OpenFile(p, flag, 0o644)
		if errors.Is(err, fs.ErrExist) && mode == createExclusive {
			st = exclusiveRetry(t, name, a)
		} else {
			st = errStatus(err)
		}
		if err == nil {
			f.Close()
		}
	}
	if st == nfs3OK {
		obj, st = t.scratchChild(t.dirRel(), name)
	}
	if st == nfs3OK && obj.sc.fi.IsDir() {
		st = nfs3ErrIsDir
	}
	if st == nfs3OK && (a.setMode || a.setSize || a.atime.how != 0 || a.mtime.how != 0) {
		st = s.scratchSetattr(obj, a)
	}
	s.created(e, nfsCreate, t, obj, st)
	return acceptSuccess
}

// created answers CREATE or MKDIR: status st, or the new object's handle
// and attributes with the directory's wcc data.
func (s *Server) created(e *encoder, proc uint32, dir, obj target, st uint32) {
	if st != nfs3OK {
		fail(e, proc, st)
		return
	}
	obj = obj.refresh()
	e.uint32(nfs3OK)
	e.bool(true)
	e.opaque(obj.handle())
	s.postOpAttr(e, obj)
	s.wcc(e, dir)
}

// exclusiveRetry answers an EXCLUSIVE create of an existing name: a
// retransmission (the file's times hold the same verifier) succeeds.
func exclusiveRetry(t target, name string, a sattr) uint32 {
	obj, st := t.scratchChild(t.dirRel(), name)
	if st != nfs3OK {
		return nfs3ErrExist
	}
	if obj.sc.fi.ModTime().Unix() == int64(a.mtime.sec) && a.mtime.how == 2 {
		return nfs3OK
	}
	return nfs3ErrExist
}

func (s *Server) mkdir(t target, st uint32, d *decoder, e *encoder) uint32 {
	name, nst := nameArg(d)
	a := sattrArg(d)
	if d.err != nil {
		return acceptGarbageArgs
	}
	if st == nfs3OK {
		st = nst
	}
	if st == nfs3OK {
		st = t.newName(name)
	}
	var obj target
	if st == nfs3OK {
		st = errStatus(os.Mkdir(t.x.scratchPath(path.Join(t.dirRel(), name)), 0o755))
	}
	if st == nfs3OK {
		obj, st = t.scratchChild(t.dirRel(), name)
	}
	if st == nfs3OK && a.setMode {
		st = s.scratchSetattr(obj, sattr{setMode: true, mode: a.mode})
	}
	s.created(e, nfsMkdir, t, obj, st)
	return acceptSuccess
}

// remove is REMOVE (a file) and RMDIR (an empty directory).
func (s *Server) remove(proc uint32, t target, st uint32, d *decoder, e *encoder) uint32 {
	name, nst := nameArg(d)
	if d.err != nil {
		return acceptGarbageArgs
	}
	if st == nfs3OK {
		st = nst
	}
	if st == nfs3OK {
		st = t.newName(name)
	}
	var obj target
	if st == nfs3OK {
		obj, st = t.scratchChild(t.dirRel(), name)
	}
	switch {
	case st != nfs3OK:
	case proc == nfsRemove && obj.sc.fi.IsDir():
		st = nfs3ErrIsDir
	case proc == nfsRmdir && !obj.sc.fi.IsDir():
		st = nfs3ErrNotDir
	case proc == nfsRemove:
		st = errStatus(syscall.Unlink(t.x.scratchPath(obj.sc.rel)))
	default:
		err := syscall.Rmdir(t.x.scratchPath(obj.sc.rel))
		if errors.Is(err, syscall.EEXIST) {
			err = syscall.ENOTEMPTY
		}
		st = errStatus(err)
	}
	if st != nfs3OK {
		fail(e, proc, st)
		return acceptSuccess
	}
	t.x.forget(obj.sc.ino())
	e.uint32(nfs3OK)
	s.wcc(e, t)
	return acceptSuccess
}

func (s *Server) rename(from target, st uint32, d *decoder, e *encoder) uint32 {
	fromName, nst := nameArg(d)
	to, tst := s.handleArg(d)
	toName, tnst := nameArg(d)
	if d.err != nil {
		return acceptGarbageArgs
	}
	for _, x := range []uint32{nst, tst, tnst} {
		if st == nfs3OK {
			st = x
		}
	}
	if st == nfs3OK && from.x != to.x {
		st = nfs3ErrXDev
	}
	for _, c := range []struct {
		dir  target
		name string
	}{{from, fromName}, {to, toName}} {
		if st == nfs3OK {
			st = c.dir.newName(c.name)
		}
	}
	var obj target
	if st == nfs3OK {
		obj, st = from.scratchChild(from.dirRel(), fromName)
	}
	if st == nfs3OK {
		newRel := path.Join(to.dirRel(), toName)
		st = errStatus(os.Rename(from.x.scratchPath(obj.sc.rel), from.x.scratchPath(newRel)))
		if st == nfs3OK && obj.sc.fi.IsDir() {
			from.x.rebuild() // every path below it changed
		} else if st == nfs3OK {
			from.x.remember(newRel, obj.sc.fi)
		}
	}
	if st != nfs3OK {
		fail(e, nfsRename, st)
		return acceptSuccess
	}
	e.uint32(nfs3OK)
	s.wcc(e, from)
	s.wcc(e, to)
	return acceptSuccess
}
