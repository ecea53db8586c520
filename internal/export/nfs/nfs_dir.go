package nfs

import (
	"path"
	"slices"
	"strings"
)

// ACCESS bits (RFC 1813 §3.3.4).
const (
	access3Read    = 0x01
	access3Lookup  = 0x02
	access3Modify  = 0x04
	access3Extend  = 0x08
	access3Delete  = 0x10
	access3Execute = 0x20
)

// nameArg reads a filename3; st is NFS3ERR_NAMETOOLONG for long names.
func nameArg(d *decoder) (string, uint32) {
	n := d.opaque(maxPathLen)
	if len(n) > maxNameLen {
		return "", nfs3ErrNameTooLong
	}
	return string(n), nfs3OK
}

// child resolves name in directory t.
func (t target) child(name string) (target, uint32) {
	switch {
	case !t.isDir():
		return t, nfs3ErrNotDir
	case name == ".":
		return t, nfs3OK
	case name == ".." && t.sc != nil:
		return t.scratchParent(), nfs3OK
	case name == ".." && t.dir != "":
		return target{x: t.x}, nfs3OK
	case name == "..":
		return t, nfs3OK
	}
	if t.sc == nil {
		full := path.Join(t.dir, name)
		if f := t.x.byName[full]; f != nil {
			return target{x: t.x, f: f}, nfs3OK
		}
		if t.x.dirs[full] {
			return target{x: t.x, dir: full}, nfs3OK
		}
	}
	return t.scratchChild(t.dirRel(), name)
}

func (t target) handle() []byte {
	if t.sc != nil {
		return scratchHandle(t.x.id, t.sc.ino())
	}
	if t.dir != "" {
		return fileHandle(t.x.id, nameHash(t.dir))
	}
	if t.f == nil {
		return t.x.root
	}
	return t.f.handle
}

func (s *Server) lookup(t target, st uint32, d *decoder, e *encoder) uint32 {
	name, nst := nameArg(d)
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
	if st != nfs3OK {
		fail(e, nfsLookup, st)
		return acceptSuccess
	}
	e.uint32(nfs3OK)
	e.opaque(obj.handle())
	s.postOpAttr(e, obj)
	s.postOpAttr(e, t)
	return acceptSuccess
}

func (s *Server) access(t target, st uint32, d *decoder, e *encoder) uint32 {
	want := d.uint32()
	if d.err != nil {
		return acceptGarbageArgs
	}
	if st != nfs3OK {
		fail(e, nfsAccess, st)
		return acceptSuccess
	}
	var ok uint32
	const change = access3Modify | access3Extend | access3Delete
	switch {
	case t.sc != nil && t.sc.fi.IsDir():
		ok = access3Read | access3Lookup | access3Execute | change
	case t.sc != nil:
		ok = access3Read | access3Execute | change
	case t.f == nil && t.x.Scratch != "":
		ok = access3Read | access3Lookup | access3Execute | change
	case t.f == nil:
		ok = access3Read | access3Lookup | access3Execute
	case t.f.WriterAt != nil:
		ok = access3Read | access3Modify
	default:
		ok = access3Read
	}
	e.uint32(nfs3OK)
	s.postOpAttr(e, t)
	e.uint32(want & ok)
	return acceptSuccess
}

// Sizes of encoded directory entries, for the client's count limits.
const (
	fattrLen    = 84
	dirOverhead = 4 + 4 + fattrLen + 8 + 4 + 4 // status, post_op_attr, verf, end of list, eof
)

func (s *Server) readdir(t target, st uint32, d *decoder, e *encoder, plus bool) uint32 {
	proc := uint32(nfsReaddir)
	if plus {
		proc = nfsReaddirplus
	}
	cookie := d.uint64()
	d.fixed(8) // cookieverf: the directory never changes, so it is not checked
	count := d.uint32()
	dircount := uint32(0)
	if plus {
		dircount, count = count, d.uint32()
	}
	if d.err != nil {
		return acceptGarbageArgs
	}
	if st == nfs3OK && !t.isDir() {
		st = nfs3ErrNotDir
	}
	if st != nfs3OK {
		fail(e, proc, st)
		return acceptSuccess
	}
	count = min(count, maxDirReply)
	names := t.dirNames()
	if cookie > uint64(len(names)) {
		fail(e, proc, nfs3ErrBadCookie)
		return acceptSuccess
	}
	start := len(e.b)
	e.uint32(nfs3OK)
	s.postOpAttr(e, t)
	e.uint64(0) // cookieverf
	used, dirUsed := dirOverhead, 0
	i := int(cookie)
	for ; i < len(names); i++ {
		obj, cst := t.child(names[i])
		if cst != nfs3OK { // gone since the listing: skip it
			continue
		}
		n := 4 + 8 + 4 + pad(len(names[i])) + 8
		dirUsed += n - 4
		if plus {
			n += 4 + fattrLen + 4 + 4 + pad(len(obj.handle()))
		}
		if used+n > int(count) || (plus && i > int(cookie) && dirUsed > int(dircount)) {
			break
		}
		used += n
		e.bool(true)
		e.uint64(obj.fileid())
		e.string(names[i])
		e.uint64(uint64(i + 1))
		if plus {
			s.postOpAttr(e, obj)
			e.bool(true)
			e.opaque(obj.handle())
		}
	}
	if i == int(cookie) && i < len(names) {
		e.b = e.b[:start]
		fail(e, proc, nfs3ErrTooSmall)
		return acceptSuccess
	}
	e.bool(false)
	e.bool(i == len(names))
	return acceptSuccess
}

// dirNames lists directory t: ".", "..", the fixed files (of the root) and
// the scratch entries, sorted, so cookies (indexes) stay meaningful while
// the directory does not change.
func (t target) dirNames() []string {
	names := []string{".", ".."}
	if t.sc == nil {
		var dirs []string
		for _, f := range t.x.files {
			dir, name, sub := strings.Cut(f.Name, "/")
			switch {
			case t.dir == "" && !sub:
				names = append(names, f.Name)
			case t.dir == "" && !slices.Contains(dirs, dir):
				dirs = append(dirs, dir)
			case sub && dir == t.dir:
				names = append(names, name)
			}
		}
		names = append(names, dirs...)
	}
	sc := t.scratchNames(t.dirRel())
	slices.Sort(sc)
	return append(names, sc...)
}
