package nfs

import (
	"bytes"
	"testing"
)

// nfsSession mounts /holdfast/x and returns a client with the handles.
func nfsSession(t *testing.T) (r running, c *rpcClient, root, ro, rw []byte, rof, rwf *memFile) {
	t.Helper()
	r, rof, rwf = newTestServer(t, Options{})
	_, root = dialRPC(t, "tcp", r.mountPort()).mnt("/holdfast/x")
	c = dialRPC(t, "tcp", r.nfsPort())
	_, ro = c.lookup(root, "disk-0.img")
	_, rw = c.lookup(root, "disk-1.img")
	return r, c, root, ro, rw, rof, rwf
}

func TestLookupGetattr(t *testing.T) {
	_, c, root, ro, rw, rof, _ := nfsSession(t)
	for _, tc := range []struct {
		name string
		st   uint32
		h    []byte
	}{
		{".", nfs3OK, root}, {"..", nfs3OK, root}, {"disk-0.img", nfs3OK, ro},
		{"nope", nfs3ErrNoEnt, nil}, {string(make([]byte, 300)), nfs3ErrNameTooLong, nil},
	} {
		if st, h := c.lookup(root, tc.name); st != tc.st || !bytes.Equal(h, tc.h) {
			t.Errorf("LOOKUP %.10q: %d %x, want %d %x", tc.name, st, h, tc.st, tc.h)
		}
	}
	if st, _ := c.lookup(ro, "x"); st != nfs3ErrNotDir {
		t.Errorf("LOOKUP in a file: %d, want NOTDIR", st)
	}
	if len(ro) != fileHandleLen || len(root) != rootHandleLen {
		t.Errorf("handle sizes %d, %d", len(ro), len(root))
	}
	_, d := c.getattr(root)
	_, f := c.getattr(ro)
	_, w := c.getattr(rw)
	if d.typ != nf3Dir || d.mode != 0o755 || f.typ != nf3Reg || f.mode != 0o444 || w.mode != 0o644 ||
		f.size != uint64(len(rof.b)) || f.fsid != d.fsid || f.fileid == w.fileid || f.fileid == 0 ||
		f.mtime != 1_700_000_000<<32|5 {
		t.Errorf("attrs: dir %+v, ro %+v, rw %+v", d, f, w)
	}
	st, acc := c.nfsCall(nfsAccess, fh(rw), u32(0x3f))
	if st != nfs3OK || !acc.bool() {
		t.Fatal("ACCESS failed")
	}
	readAttrs(acc)
	if got := acc.uint32(); got != access3Read|access3Modify {
		t.Errorf("ACCESS rw = %#x", got)
	}
}

func TestReadWriteCommit(t *testing.T) {
	_, c, root, ro, rw, rof, rwf := nfsSession(t)
	size := uint64(len(rof.b))
	st, eof, data := c.read(ro, 0, 2<<20)
	if st != nfs3OK || eof || len(data) != MaxRead || !bytes.Equal(data, rof.b[:MaxRead]) {
		t.Errorf("READ 2 MiB: %d eof=%v %d bytes; want %d clamped", st, eof, len(data), MaxRead)
	}
	if st, eof, data = c.read(ro, size-10, 100); st != nfs3OK || !eof || !bytes.Equal(data, rof.b[size-10:]) {
		t.Errorf("READ at the end: %d eof=%v %d bytes", st, eof, len(data))
	}
	if st, eof, data = c.read(ro, size+10, 100); st != nfs3OK || !eof || len(data) != 0 {
		t.Errorf("READ past the end: %d eof=%v %d bytes", st, eof, len(data))
	}
	if st, _, _ = c.read(root, 0, 10); st != nfs3ErrIsDir {
		t.Errorf("READ of the directory: %d", st)
	}

	write := func(h []byte, off uint64, stable uint32, p []byte) (uint32, uint32) {
		st, d := c.nfsCall(nfsWrite, fh(h), u64(off), u32(uint32(len(p))), u32(stable), opq(p))
		if st != nfs3OK {
			return st, 0
		}
		if d.bool() { // pre_op_attr
			d.uint64()
			d.uint64()
			d.uint64()
		}
		if d.bool() {
			readAttrs(d)
		}
		d.uint32()
		return st, d.uint32()
	}
	p := bytes.Repeat([]byte{0x5a}, 10000)
	if st, committed := write(rw, 100, unstable, p); st != nfs3OK || committed != unstable || rwf.flushes != 0 {
		t.Errorf("WRITE UNSTABLE: %d committed %d flushes %d", st, committed, rwf.flushes)
	}
	if !bytes.Equal(rwf.bytes()[100:10100], p) {
		t.Error("WRITE did not reach the WriterAt")
	}
	if st, committed := write(rw, 0, fileSync, p[:10]); st != nfs3OK || committed != fileSync || rwf.flushes != 1 {
		t.Errorf("WRITE FILE_SYNC: %d committed %d flushes %d", st, committed, rwf.flushes)
	}
	if st, _ := c.nfsCall(nfsCommit, fh(rw), u64(0), u32(0)); st != nfs3OK || rwf.flushes != 2 {
		t.Errorf("COMMIT: %d flushes %d", st, rwf.flushes)
	}
	if st, _ := write(ro, 0, fileSync, p); st != nfs3ErrROFS {
		t.Errorf("WRITE read-only: %d, want ROFS", st)
	}
	if st, _ := write(rw, uint64(len(rwf.b))-5, unstable, p[:10]); st != nfs3ErrFBig {
		t.Errorf("WRITE past the end: %d, want FBIG", st)
	}
	if st, _ := write(rw, 0, unstable, make([]byte, MaxWrite+1)); st != nfs3ErrInval {
		t.Errorf("WRITE > wtmax: %d, want INVAL", st)
	}
	if st, _ := c.nfsCall(nfsWrite, fh(rw), u64(0), u32(20), u32(0), opq(p[:10])); st != nfs3ErrInval {
		t.Errorf("WRITE count > data: %d, want INVAL", st)
	}
}

func TestSetattrCreate(t *testing.T) {
	_, c, root, ro, rw, _, rwf := nfsSession(t)
	// sattr3: set_mode, set_uid, set_gid, set_size, atime, mtime
	sattr := func(size *uint64) func(*encoder) {
		return func(e *encoder) {
			e.bool(true)
			e.uint32(0o600)
			e.bool(false)
			e.bool(false)
			e.bool(size != nil)
			if size != nil {
				e.uint64(*size)
			}
			e.uint32(1)
			e.uint32(2)
			e.uint64(0)
		}
	}
	same, other, zero := uint64(len(rwf.b)), uint64(5), uint64(0)
	noGuard := u32(0)
	for _, tc := range []struct {
		name string
		h    []byte
		size *uint64
		want uint32
	}{
		{"mode and times", rw, nil, nfs3OK}, {"same size", rw, &same, nfs3OK},
		{"other size", rw, &other, nfs3ErrInval}, {"truncate rw", rw, &zero, nfs3OK},
		{"truncate ro", ro, &zero, nfs3ErrROFS}, {"dir size", root, &other, nfs3ErrIsDir},
	} {
		if st, _ := c.nfsCall(nfsSetattr, fh(tc.h), sattr(tc.size), noGuard); st != tc.want {
			t.Errorf("SETATTR %s: %d, want %d", tc.name, st, tc.want)
		}
	}
	if st, _ := c.getattr(rw); st != nfs3OK {
		t.Fatal(st)
	}
	if _, a := c.getattr(rw); a.size != same {
		t.Errorf("size changed to %d", a.size)
	}
	guard := func(e *encoder) { e.bool(true); e.uint64(1) }
	if st, _ := c.nfsCall(nfsSetattr, fh(rw), sattr(nil), guard); st != nfs3ErrNotSync {
		t.Errorf("SETATTR with a wrong ctime guard: %d, want NOT_SYNC", st)
	}

	for _, tc := range []struct {
		name string
		mode uint32
		file string
		want uint32
	}{
		{"unchecked existing", createUnchecked, "disk-1.img", nfs3OK},
		{"guarded writable", createGuarded, "disk-1.img", nfs3OK},
		{"guarded read-only", createGuarded, "disk-0.img", nfs3ErrExist},
		{"new name", createUnchecked, "new.img", nfs3ErrNotSupp},
	} {
		st, d := c.nfsCall(nfsCreate, fh(root), str(tc.file), u32(tc.mode), sattr(nil))
		if st != tc.want {
			t.Errorf("CREATE %s: %d, want %d", tc.name, st, tc.want)
		}
		if st == nfs3OK && (!d.bool() || !bytes.Equal(d.opaque(64), rw)) {
			t.Errorf("CREATE %s: wrong handle", tc.name)
		}
	}
	if st, _ := c.nfsCall(nfsCreate, fh(root), str("disk-1.img"), u32(createExclusive), u64(7)); st != nfs3ErrExist {
		t.Errorf("CREATE EXCLUSIVE existing: %d", st)
	}
	for _, proc := range []uint32{5, 9, 10, 11, 12, 13, 14, 15} {
		if st, _ := c.nfsCall(proc, fh(root), str("x")); st != nfs3ErrNotSupp {
			t.Errorf("proc %d: %d, want NOTSUPP", proc, st)
		}
	}
}

func TestReaddir(t *testing.T) {
	_, c, root, ro, _, _, _ := nfsSession(t)
	list := func(plus bool, count uint32) []string {
		var names []string
		cookie := uint64(0)
		for range 10 {
			args := []func(*encoder){fh(root), u64(cookie), u64(0), u32(count)}
			proc := uint32(nfsReaddir)
			if plus {
				proc = nfsReaddirplus
				args = append(args, u32(count))
			}
			st, d := c.nfsCall(proc, args...)
			if st != nfs3OK {
				t.Fatalf("READDIR cookie %d count %d: %d", cookie, count, st)
			}
			if d.bool() {
				readAttrs(d)
			}
			d.uint64()
			for d.bool() {
				d.uint64()
				names = append(names, d.string(maxNameLen))
				cookie = d.uint64()
				if plus {
					if d.bool() {
						readAttrs(d)
					}
					if d.bool() {
						d.opaque(maxHandleBytes)
					}
				}
			}
			if d.bool() {
				if d.err != nil {
					t.Fatal(d.err)
				}
				return names
			}
		}
		t.Fatal("READDIR never reached eof")
		return nil
	}
	want := []string{".", "..", "disk-0.img", "disk-1.img", "vm.json"}
	for _, plus := range []bool{false, true} {
		for _, count := range []uint32{8192, 300} {
			if got := list(plus, count); len(got) != len(want) || got[2] != want[2] || got[4] != want[4] {
				t.Errorf("READDIR plus=%v count=%d: %v", plus, count, got)
			}
		}
	}
	if st, _ := c.nfsCall(nfsReaddir, fh(root), u64(0), u64(0), u32(50)); st != nfs3ErrTooSmall {
		t.Errorf("READDIR count 50: %d, want TOOSMALL", st)
	}
	if st, _ := c.nfsCall(nfsReaddir, fh(root), u64(99), u64(0), u32(4096)); st != nfs3ErrBadCookie {
		t.Errorf("READDIR cookie 99: %d, want BAD_COOKIE", st)
	}
	if st, _ := c.nfsCall(nfsReaddir, fh(ro), u64(0), u64(0), u32(4096)); st != nfs3ErrNotDir {
		t.Errorf("READDIR of a file: %d, want NOTDIR", st)
	}
}

func TestFsinfo(t *testing.T) {
	_, c, root, _, _, _, _ := nfsSession(t)
	st, d := c.nfsCall(nfsFsinfo, fh(root))
	if st != nfs3OK || !d.bool() {
		t.Fatal(st)
	}
	readAttrs(d)
	if rtmax, rtpref := d.uint32(), d.uint32(); rtmax != MaxRead || rtpref != MaxRead {
		t.Errorf("rtmax %d rtpref %d", rtmax, rtpref)
	}
	d.uint32()
	if wtmax := d.uint32(); wtmax != MaxWrite {
		t.Errorf("wtmax %d", wtmax)
	}
	st, d = c.nfsCall(nfsFsstat, fh(root))
	if st != nfs3OK || !d.bool() {
		t.Fatal(st)
	}
	readAttrs(d)
	if tbytes := d.uint64(); tbytes != 3<<20+1234+2<<20+11 {
		t.Errorf("FSSTAT tbytes %d", tbytes)
	}
	st, d = c.nfsCall(nfsPathconf, fh(root))
	if st != nfs3OK || !d.bool() {
		t.Fatal(st)
	}
	readAttrs(d)
	if d.uint32(); d.uint32() != maxNameLen {
		t.Error("PATHCONF name_max")
	}
}
