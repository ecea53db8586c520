package nfs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"os/exec"
	"testing"
)

func newTestServer(t *testing.T, o Options) (running, *memFile, *memFile) {
	t.Helper()
	srv := NewServer(o)
	exp, ro, rw := testExport("/holdfast/x")
	if err := srv.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	return serveT(t, srv), ro, rw
}

func TestPortmapper(t *testing.T) {
	r, _, _ := newTestServer(t, Options{})
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			c := dialRPC(t, network, r.pmapPort())
			c.ok(progPortmap, versPortmap, pmapNull, nil)
			getport := func(prog, vers, prot uint32) uint32 {
				e := &encoder{}
				for _, v := range []uint32{prog, vers, prot, 0} {
					e.uint32(v)
				}
				return c.ok(progPortmap, versPortmap, pmapGetport, e.b).uint32()
			}
			for _, tc := range []struct {
				prog, vers, prot uint32
				want             int
			}{
				{progMount, versMount, protoTCP, r.mountPort()},
				{progMount, versMount, protoUDP, r.mountPort()},
				{progNFS, versNFS, protoTCP, r.nfsPort()},
				{progNFS, versNFS, protoUDP, 0},
				{progNFS, 4, protoTCP, 0},
				{progPortmap, versPortmap, protoTCP, r.pmapPort()},
			} {
				if got := getport(tc.prog, tc.vers, tc.prot); int(got) != tc.want {
					t.Errorf("GETPORT %d v%d prot %d = %d, want %d", tc.prog, tc.vers, tc.prot, got, tc.want)
				}
			}
			// SET and UNSET from loopback.
			set := func(proc, port uint32) bool {
				e := &encoder{}
				for _, v := range []uint32{400000, 1, protoTCP, port} {
					e.uint32(v)
				}
				return c.ok(progPortmap, versPortmap, proc, e.b).bool()
			}
			if !set(pmapSet, 4242) || set(pmapSet, 4343) {
				t.Error("SET: first must succeed, second must fail")
			}
			if got := getport(400000, 1, protoTCP); got != 4242 {
				t.Errorf("GETPORT after SET = %d", got)
			}
			d := c.ok(progPortmap, versPortmap, pmapDump, nil)
			n := 0
			for d.bool() {
				d.uint32()
				d.uint32()
				d.uint32()
				d.uint32()
				n++
			}
			if d.err != nil || n != 6 {
				t.Errorf("DUMP: %d entries, err %v; want 6", n, d.err)
			}
			if !set(pmapUnset, 0) || getport(400000, 1, protoTCP) != 0 {
				t.Error("UNSET did not remove the mapping")
			}
		})
	}
}

func TestRPCErrors(t *testing.T) {
	r, _, _ := newTestServer(t, Options{})
	c := dialRPC(t, "tcp", r.nfsPort())
	check := func(name string, got reply, denied bool, stat uint32, extra ...uint32) {
		t.Helper()
		if got.denied != denied || got.stat != stat || len(extra) > 0 && !equalU32(got.extra, extra) {
			t.Errorf("%s: denied=%v stat=%d extra=%v; want %v %d %v", name, got.denied, got.stat, got.extra, denied, stat, extra)
		}
	}
	check("other program", c.call(progMount, versMount, 0, nil), false, acceptProgUnavail)
	check("NFSv2", c.call(progNFS, 2, 0, nil), false, acceptProgMismatch, 3, 3)
	check("NFSv4", c.call(progNFS, 4, 0, nil), false, acceptProgMismatch, 3, 3)
	check("proc 22", c.call(progNFS, versNFS, 22, nil), false, acceptProcUnavail)
	check("truncated GETATTR", c.call(progNFS, versNFS, nfsGetattr, []byte{0, 0}), false, acceptGarbageArgs)
	check("handle > 64 bytes", c.call(progNFS, versNFS, nfsGetattr, opaqueBytes(make([]byte, 65))), false, acceptGarbageArgs)
	check("AUTH_NONE", c.call(progNFS, versNFS, nfsNull, nil), false, acceptSuccess)

	c.cred = func(e *encoder) { e.uint32(authNone); e.uint32(0) }
	check("AUTH_NONE cred", c.call(progNFS, versNFS, nfsNull, nil), false, acceptSuccess)
	c.cred = func(e *encoder) { e.uint32(6); e.opaque([]byte("gss")) } // RPCSEC_GSS
	check("RPCSEC_GSS", c.call(progNFS, versNFS, nfsNull, nil), true, rejectAuthError, authBadCred)
	c.cred = func(e *encoder) { e.uint32(authSys); e.opaque([]byte{1, 2, 3, 4}) }
	check("short AUTH_SYS", c.call(progNFS, versNFS, nfsNull, nil), true, rejectAuthError, authBadCred)
	c.cred = nil

	e := callHeader(999, progNFS, versNFS, nfsNull, nil)
	e.b[11] = 3 // rpcvers 3
	check("RPC v3", c.parse(c.raw(e.b), 999), true, rejectRPCMismatch, 2, 2)

	// A multi-fragment record is one call.
	msg := callHeader(1000, progNFS, versNFS, nfsNull, nil).b
	var frames []byte
	for i := 0; i < len(msg); i += 8 {
		end := min(i+8, len(msg))
		h := uint32(end - i)
		if end == len(msg) {
			h |= 1 << 31
		}
		frames = append(frames, byte(h>>24), byte(h>>16), byte(h>>8), byte(h))
		frames = append(frames, msg[i:end]...)
	}
	c.tcp = false // frames are already marked
	if _, err := c.conn.Write(frames); err != nil {
		t.Fatal(err)
	}
	rec, err := readRecord(c.br, nil, MaxRecordSize)
	if err != nil {
		t.Fatal(err)
	}
	c.tcp = true
	check("fragments", c.parse(rec, 1000), false, acceptSuccess)

	// A record larger than MaxRecordSize closes the connection.
	big := binary.BigEndian.AppendUint32(nil, 1<<31|(MaxRecordSize+1))
	if _, err := c.conn.Write(big); err != nil {
		t.Fatal(err)
	}
	if _, err := readRecord(c.br, nil, MaxRecordSize); err == nil {
		t.Error("oversized record: connection still open")
	}
}

func opaqueBytes(b []byte) []byte { e := &encoder{}; e.opaque(b); return e.b }

func equalU32(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestMount(t *testing.T) {
	r, _, _ := newTestServer(t, Options{})
	c := dialRPC(t, "udp", r.mountPort())
	if st, h := c.mnt("/holdfast/x"); st != mnt3OK || !bytes.Equal(h, rootHandle(exportHash("/holdfast/x"))) {
		t.Fatalf("MNT: %d %x", st, h)
	}
	if st, _ := c.mnt("/holdfast/nope"); st != mnt3ErrNoEnt {
		t.Errorf("MNT unknown: %d, want NOENT", st)
	}
	d := c.ok(progMount, versMount, mountExport, nil)
	var dirs, groups []string
	for d.bool() {
		dirs = append(dirs, d.string(maxPathLen))
		for d.bool() {
			groups = append(groups, d.string(maxPathLen))
		}
	}
	if d.err != nil || len(dirs) != 1 || dirs[0] != "/holdfast/x" || len(groups) != 2 || groups[0] != "127.0.0.0/8" {
		t.Errorf("EXPORT: %v %v %v", dirs, groups, d.err)
	}
	dump := func() int {
		d := c.ok(progMount, versMount, mountDump, nil)
		n := 0
		for d.bool() {
			d.string(maxPathLen)
			d.string(maxPathLen)
			n++
		}
		return n
	}
	if n := dump(); n != 1 {
		t.Errorf("DUMP: %d mounts, want 1", n)
	}
	c.ok(progMount, versMount, mountUmnt, opaqueBytes([]byte("/holdfast/x")))
	if n := dump(); n != 0 {
		t.Errorf("DUMP after UMNT: %d mounts", n)
	}
	c.mnt("/holdfast/x")
	c.ok(progMount, versMount, mountUmntAll, nil)
	if n := dump(); n != 0 {
		t.Errorf("DUMP after UMNTALL: %d mounts", n)
	}
}

func TestAllowRefused(t *testing.T) {
	r, _, _ := newTestServer(t, Options{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	c := dialRPC(t, "tcp", r.mountPort())
	if st, _ := c.mnt("/holdfast/x"); st != mnt3ErrAcces {
		t.Errorf("MNT outside Allow: %d, want ACCES", st)
	}
	d := c.ok(progMount, versMount, mountExport, nil)
	if d.bool() {
		t.Error("EXPORT lists exports to a client outside Allow")
	}
	n := dialRPC(t, "tcp", r.nfsPort())
	if st, _ := n.getattr(rootHandle(exportHash("/holdfast/x"))); st != nfs3ErrAcces {
		t.Errorf("GETATTR outside Allow: %d, want ACCES", st)
	}
	if _, err := exec.LookPath("nfs-ls"); err == nil {
		if out, err := run(t, "nfs-ls", r.url("/holdfast/x")); err == nil {
			t.Errorf("nfs-ls outside Allow succeeded:\n%s", out)
		}
	}
}

func TestStaleAfterRemove(t *testing.T) {
	r, _, _ := newTestServer(t, Options{})
	m := dialRPC(t, "tcp", r.mountPort())
	_, root := m.mnt("/holdfast/x")
	c := dialRPC(t, "tcp", r.nfsPort())
	_, disk := c.lookup(root, "disk-0.img")
	if st, _ := c.getattr(disk); st != nfs3OK {
		t.Fatalf("GETATTR: %d", st)
	}
	r.srv.RemoveExport("/holdfast/x")
	for _, h := range [][]byte{root, disk} {
		if st, _ := c.getattr(h); st != nfs3ErrStale {
			t.Errorf("GETATTR after RemoveExport: %d, want STALE", st)
		}
	}
	if st, _, _ := c.read(disk, 0, 10); st != nfs3ErrStale {
		t.Errorf("READ after RemoveExport: %d, want STALE", st)
	}
	if st, _ := m.mnt("/holdfast/x"); st != mnt3ErrNoEnt {
		t.Errorf("MNT after RemoveExport: %d, want NOENT", st)
	}
	bad := append([]byte{9}, disk[1:]...)
	if st, _ := c.getattr(bad); st != nfs3ErrBadHandle {
		t.Errorf("GETATTR of a foreign handle: %d, want BADHANDLE", st)
	}
}

// TestRestartSameHandles stops the service and starts a new Server on the
// same exports: handles from the first run keep working.
func TestRestartSameHandles(t *testing.T) {
	exp, ro, _ := testExport("/holdfast/x")
	srv1 := NewServer(Options{})
	if err := srv1.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	r1 := serveT(t, srv1)
	m := dialRPC(t, "tcp", r1.mountPort())
	_, root := m.mnt("/holdfast/x")
	c := dialRPC(t, "tcp", r1.nfsPort())
	_, disk := c.lookup(root, "disk-0.img")
	_, a1 := c.getattr(disk)
	r1.stop()

	srv2 := NewServer(Options{})
	if err := srv2.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	r2 := serveT(t, srv2)
	c2 := dialRPC(t, "tcp", r2.nfsPort())
	st, a2 := c2.getattr(disk)
	if st != nfs3OK || a2 != a1 {
		t.Fatalf("GETATTR after restart: %d %+v, want %+v", st, a2, a1)
	}
	st, _, data := c2.read(disk, 1000, 5000)
	if st != nfs3OK || !bytes.Equal(data, ro.b[1000:6000]) {
		t.Fatalf("READ after restart: %d", st)
	}
	if _, h := c2.lookup(root, "disk-0.img"); !bytes.Equal(h, disk) {
		t.Error("LOOKUP after restart returns another handle")
	}
}

func TestAddExportValidation(t *testing.T) {
	srv := NewServer(Options{})
	f := File{Name: "a", Size: 1, ReaderAt: bytes.NewReader([]byte{1})}
	for _, e := range []Export{
		{Path: "relative", Files: []File{f}},
		{Path: "/", Files: []File{f}},
		{Path: "/a/../b", Files: []File{f}},
		{Path: "/x", Files: []File{f, f}},
		{Path: "/x", Files: []File{{Name: "a/b/c", ReaderAt: f.ReaderAt}}}, // one directory level only
		{Path: "/x", Files: []File{{Name: "a/", ReaderAt: f.ReaderAt}}},
		{Path: "/x", Files: []File{{Name: "../b", ReaderAt: f.ReaderAt}}},
		{Path: "/x", Files: []File{{Name: "a", ReaderAt: f.ReaderAt}, {Name: "a/b", ReaderAt: f.ReaderAt}}}, // a file and a directory
		{Path: "/x", Files: []File{{Name: "..", ReaderAt: f.ReaderAt}}},
		{Path: "/x", Files: []File{{Name: "n"}}},
	} {
		if err := srv.AddExport(e); !errors.Is(err, ErrInvalidExport) {
			t.Errorf("AddExport(%+v) = %v, want ErrInvalidExport", e, err)
		}
	}
}
