package nfs

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// scratchSession serves /holdfast/x with a scratch directory and mounts it.
func scratchSession(t *testing.T) (srv *Server, c *rpcClient, root []byte, dir string, exp Export) {
	t.Helper()
	dir = t.TempDir()
	srv = NewServer(Options{})
	exp, _, _ = testExport("/holdfast/x")
	exp.Scratch = dir
	if err := srv.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	r := serveT(t, srv)
	_, root = dialRPC(t, "tcp", r.mountPort()).mnt("/holdfast/x")
	return srv, dialRPC(t, "tcp", r.nfsPort()), root, dir, exp
}

// sattrNone is a sattr3 that sets nothing; sattrSize sets the size.
func sattrNone(e *encoder) { sattrSize(-1)(e) }

func sattrSize(size int64) func(*encoder) {
	return func(e *encoder) {
		e.bool(false)
		e.bool(false)
		e.bool(false)
		e.bool(size >= 0)
		if size >= 0 {
			e.uint64(uint64(size))
		}
		e.uint32(0)
		e.uint32(0)
	}
}

// made calls CREATE or MKDIR and returns the status and the new handle.
func (c *rpcClient) made(proc uint32, dir []byte, name string, args ...func(*encoder)) (uint32, []byte) {
	c.t.Helper()
	st, d := c.nfsCall(proc, append([]func(*encoder){fh(dir), str(name)}, args...)...)
	if st != nfs3OK {
		return st, nil
	}
	if !d.bool() {
		c.t.Fatalf("proc %d %q: no handle", proc, name)
	}
	return st, d.opaque(maxHandleBytes)
}

// names lists a directory with READDIRPLUS.
func (c *rpcClient) names(dir []byte) []string {
	c.t.Helper()
	st, d := c.nfsCall(nfsReaddirplus, fh(dir), u64(0), u64(0), u32(8192), u32(65536))
	if st != nfs3OK {
		c.t.Fatalf("READDIRPLUS: %d", st)
	}
	if d.bool() {
		readAttrs(d)
	}
	d.uint64()
	var out []string
	for d.bool() {
		d.uint64()
		out = append(out, d.string(maxNameLen))
		d.uint64()
		if d.bool() {
			readAttrs(d)
		}
		if d.bool() {
			d.opaque(maxHandleBytes)
		}
	}
	if !d.bool() || d.err != nil {
		c.t.Fatalf("READDIRPLUS: no eof (%v)", d.err)
	}
	return out
}

func (c *rpcClient) write(h []byte, off uint64, data []byte) uint32 {
	c.t.Helper()
	st, _ := c.nfsCall(nfsWrite, fh(h), u64(off), u32(uint32(len(data))), u32(fileSync), opq(data))
	return st
}

// TestScratchESXiFiles goes through what ESXi does on a datastore: a lock
// directory with a file in it, a swap file sized with SETATTR, a log that
// is rotated by RENAME, a rewritten .vmx, and cleanup.
func TestScratchESXiFiles(t *testing.T) {
	_, c, root, dir, _ := scratchSession(t)

	st, lck := c.made(nfsMkdir, root, ".lck-0011223344556677", sattrNone)
	if st != nfs3OK || len(lck) != scratchHandleLen {
		t.Fatalf("MKDIR: %d, handle %x", st, lck)
	}
	st, lf := c.made(nfsCreate, lck, "lock.1", u32(createGuarded), sattrNone)
	if st != nfs3OK {
		t.Fatalf("CREATE in the lock directory: %d", st)
	}
	if st := c.write(lf, 0, []byte("heartbeat")); st != nfs3OK {
		t.Fatalf("WRITE: %d", st)
	}
	if st, _, got := c.read(lf, 0, 100); st != nfs3OK || string(got) != "heartbeat" {
		t.Fatalf("READ: %d %q", st, got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, ".lck-0011223344556677", "lock.1")); err != nil || string(b) != "heartbeat" {
		t.Fatalf("the scratch directory holds %q, %v", b, err)
	}

	_, swap := c.made(nfsCreate, root, "vm-1234.vswp", u32(createUnchecked), sattrNone)
	if st, _ := c.nfsCall(nfsSetattr, fh(swap), sattrSize(1<<30), u32(0)); st != nfs3OK {
		t.Fatalf("SETATTR size of the swap file: %d", st)
	}
	if _, a := c.getattr(swap); a.size != 1<<30 || a.typ != nf3Reg {
		t.Errorf("swap file attrs %+v", a)
	}
	fi, err := os.Stat(filepath.Join(dir, "vm-1234.vswp"))
	if err != nil {
		t.Fatal(err)
	}
	ct := fi.Sys().(*syscall.Stat_t).Ctim
	guard := func(e *encoder) { e.bool(true); e.uint32(uint32(ct.Sec)); e.uint32(uint32(ct.Nsec)) }
	if st, _ := c.nfsCall(nfsSetattr, fh(swap), sattrSize(2<<30), guard); st != nfs3OK {
		t.Errorf("SETATTR with the file's ctime as guard: %d", st)
	}
	stale := func(e *encoder) { e.bool(true); e.uint32(uint32(ct.Sec - 1)); e.uint32(uint32(ct.Nsec)) }
	if st, _ := c.nfsCall(nfsSetattr, fh(swap), sattrSize(1<<30), stale); st != nfs3ErrNotSync {
		t.Errorf("SETATTR with a stale ctime guard: %d, want NOT_SYNC", st)
	}

	_, logf := c.made(nfsCreate, root, "vmware.log", u32(createUnchecked), sattrNone)
	_ = c.write(logf, 0, []byte("line 1\n"))
	if st, _ := c.nfsCall(nfsRename, fh(root), str("vmware.log"), fh(root), str("vmware-1.log")); st != nfs3OK {
		t.Fatalf("RENAME: %d", st)
	}
	if st, _, got := c.read(logf, 0, 100); st != nfs3OK || string(got) != "line 1\n" {
		t.Errorf("the handle after RENAME: %d %q", st, got)
	}
	if st, _ := c.lookup(root, "vmware.log"); st != nfs3ErrNoEnt {
		t.Errorf("old name after RENAME: %d", st)
	}

	_, vmx := c.made(nfsCreate, root, "vm.vmx~", u32(createUnchecked), sattrNone)
	_ = c.write(vmx, 0, []byte(`displayName = "vm"`+"\n"))
	if st, _ := c.nfsCall(nfsRename, fh(root), str("vm.vmx~"), fh(lck), str("moved")); st != nfs3OK {
		t.Errorf("RENAME across directories: %d", st)
	}

	got := c.names(root)
	want := []string{".", "..", "disk-0.img", "disk-1.img", "vm.json", ".lck-0011223344556677", "vm-1234.vswp", "vmware-1.log"}
	if !slices.Equal(got, want) {
		t.Errorf("READDIRPLUS root: %q, want %q", got, want)
	}
	if got := c.names(lck); !slices.Equal(got, []string{".", "..", "lock.1", "moved"}) {
		t.Errorf("READDIRPLUS lock dir: %q", got)
	}
	if st, h := c.lookup(lck, ".."); st != nfs3OK || !bytes.Equal(h, root) {
		t.Errorf("LOOKUP .. of a scratch directory: %d %x", st, h)
	}

	if st, _ := c.nfsCall(nfsRmdir, fh(root), str(".lck-0011223344556677")); st != nfs3ErrNotEmpty {
		t.Errorf("RMDIR of a full directory: %d, want NOTEMPTY", st)
	}
	for _, n := range []string{"lock.1", "moved"} {
		if st, _ := c.nfsCall(nfsRemove, fh(lck), str(n)); st != nfs3OK {
			t.Errorf("REMOVE %s: %d", n, st)
		}
	}
	if st, _ := c.nfsCall(nfsRmdir, fh(root), str(".lck-0011223344556677")); st != nfs3OK {
		t.Errorf("RMDIR: %d", st)
	}
	if st, _ := c.getattr(lck); st != nfs3ErrStale {
		t.Errorf("GETATTR of a removed directory: %d, want STALE", st)
	}
}

// TestScratchKeepsFixedFiles: the point's files cannot be removed, renamed
// or replaced, and keep their old CREATE behaviour.
func TestScratchKeepsFixedFiles(t *testing.T) {
	_, c, root, dir, _ := scratchSession(t)
	_, rw := c.lookup(root, "disk-1.img")
	for _, tc := range []struct {
		name string
		proc uint32
		args []func(*encoder)
		want uint32
	}{
		{"remove a disk", nfsRemove, []func(*encoder){fh(root), str("disk-0.img")}, nfs3ErrAcces},
		{"rename a disk", nfsRename, []func(*encoder){fh(root), str("disk-0.img"), fh(root), str("x")}, nfs3ErrAcces},
		{"mkdir over a disk", nfsMkdir, []func(*encoder){fh(root), str("vm.json"), sattrNone}, nfs3ErrAcces},
		{"mkdir in a file", nfsMkdir, []func(*encoder){fh(rw), str("d"), sattrNone}, nfs3ErrNotDir},
		{"bad name", nfsMkdir, []func(*encoder){fh(root), str("a/b"), sattrNone}, nfs3ErrInval},
		{"dot name", nfsCreate, []func(*encoder){fh(root), str(".."), u32(createGuarded), sattrNone}, nfs3ErrExist},
		{"remove missing", nfsRemove, []func(*encoder){fh(root), str("nope")}, nfs3ErrNoEnt},
		{"guarded existing disk", nfsCreate, []func(*encoder){fh(root), str("disk-0.img"), u32(createGuarded), sattrNone}, nfs3ErrExist},
	} {
		if st, _ := c.nfsCall(tc.proc, tc.args...); st != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, st, tc.want)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "vm.json"), []byte("shadow"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, a := c.getattr(mustLookup(t, c, root, "vm.json")); a.size != 11 {
		t.Errorf("a scratch file shadows the fixed vm.json: size %d", a.size)
	}
	if got := c.names(root); strings.Count(strings.Join(got, "\n"), "vm.json") != 1 {
		t.Errorf("vm.json listed twice: %q", got)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if st, _ := c.lookup(root, "link"); st != nfs3ErrNoEnt {
		t.Errorf("a symlink in the scratch directory is served: %d", st)
	}
}

func mustLookup(t *testing.T, c *rpcClient, dir []byte, name string) []byte {
	t.Helper()
	st, h := c.lookup(dir, name)
	if st != nfs3OK {
		t.Fatalf("LOOKUP %s: %d", name, st)
	}
	return h
}

// TestScratchFsstat: an export with a scratch area reports free space.
func TestScratchFsstat(t *testing.T) {
	_, c, root, _, _ := scratchSession(t)
	st, d := c.nfsCall(nfsFsstat, fh(root))
	if st != nfs3OK || !d.bool() {
		t.Fatalf("FSSTAT: %d", st)
	}
	readAttrs(d)
	total, free, avail := d.uint64(), d.uint64(), d.uint64()
	if free == 0 || avail == 0 || total < free {
		t.Errorf("FSSTAT total %d free %d avail %d", total, free, avail)
	}
}

// TestScratchExclusiveCreate: EXCLUSIVE creates a file once; the same
// verifier again (a retransmission) succeeds, another fails.
func TestScratchExclusiveCreate(t *testing.T) {
	_, c, root, _, _ := scratchSession(t)
	if st, _ := c.made(nfsCreate, root, "x.lck", u32(createExclusive), u64(0x0102030405060708)); st != nfs3OK {
		t.Fatalf("EXCLUSIVE: %d", st)
	}
	if st, _ := c.made(nfsCreate, root, "x.lck", u32(createExclusive), u64(0x0102030405060708)); st != nfs3OK {
		t.Errorf("EXCLUSIVE retransmitted: %d", st)
	}
	if st, _ := c.made(nfsCreate, root, "x.lck", u32(createExclusive), u64(9)); st != nfs3ErrExist {
		t.Errorf("EXCLUSIVE other verifier: %d, want EXIST", st)
	}
}

// TestScratchHandlesSurviveRestart: a new Server with the same export
// resolves the handles of scratch objects an old one gave out.
func TestScratchHandlesSurviveRestart(t *testing.T) {
	_, c, root, _, exp := scratchSession(t)
	_, d := c.made(nfsMkdir, root, "sub", sattrNone)
	_, f := c.made(nfsCreate, d, "f", u32(createUnchecked), sattrSize(5))

	srv2 := NewServer(Options{})
	if err := srv2.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	r2 := serveT(t, srv2)
	c2 := dialRPC(t, "tcp", r2.nfsPort())
	if st, a := c2.getattr(f); st != nfs3OK || a.size != 5 {
		t.Errorf("GETATTR after restart: %d %+v", st, a)
	}
	if st, a := c2.getattr(d); st != nfs3OK || a.typ != nf3Dir {
		t.Errorf("GETATTR dir after restart: %d %+v", st, a)
	}
	// the root's mtime follows changes in the scratch area (clients
	// revalidate their directory caches by it)
	if _, a := c2.getattr(root); a.mtime <= uint64(1_700_000_000)<<32|5 {
		t.Errorf("root mtime %x stays the export's", a.mtime)
	}
}

// TestScratchNfsCp: libnfs's nfs-cp writes a new file into the export
// (it lands in the scratch directory), nfs-ls lists it and nfs-cp reads it
// back.
func TestScratchNfsCp(t *testing.T) {
	needBins(t, "nfs-cp", "nfs-ls")
	dir := t.TempDir()
	srv := NewServer(Options{})
	exp, _, _ := testExport("/holdfast/x")
	exp.Scratch = dir
	if err := srv.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	r := serveT(t, srv)
	local := t.TempDir()
	src := filepath.Join(local, "in.nvram")
	want := randomBytes(300_000, 3)
	if err := os.WriteFile(src, want, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "nfs-cp", src, r.url("/holdfast/x/vm.nvram"))
	if got, err := os.ReadFile(filepath.Join(dir, "vm.nvram")); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("scratch file: %d bytes, %v", len(got), err)
	}
	out := string(mustRun(t, "nfs-ls", r.url("/holdfast/x")))
	if !strings.Contains(out, "vm.nvram") || !strings.Contains(out, "disk-0.img") {
		t.Errorf("nfs-ls:\n%s", out)
	}
	back := filepath.Join(local, "back")
	mustRun(t, "nfs-cp", r.url("/holdfast/x/vm.nvram"), back)
	if got, _ := os.ReadFile(back); !bytes.Equal(got, want) {
		t.Errorf("read back %d bytes, differ", len(got))
	}
	// overwrite with a shorter file: nfs-cp truncates it first
	if err := os.WriteFile(src, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "nfs-cp", src, r.url("/holdfast/x/vm.nvram"))
	if got, _ := os.ReadFile(filepath.Join(dir, "vm.nvram")); string(got) != "short" {
		t.Errorf("after overwrite: %d bytes", len(got))
	}
}

// TestDirectoryOfFixedFiles: files named "vm/…" make a directory vm that
// holds them and the scratch area's vm directory, as ESXi's VM folders.
func TestDirectoryOfFixedFiles(t *testing.T) {
	dir := t.TempDir()
	flat := &memFile{b: randomBytes(8192, 5)}
	exp := Export{Path: "/holdfast/v", Scratch: dir, Files: []File{
		{Name: "vm/vm-flat.vmdk", Size: 8192, ReaderAt: flat, WriterAt: flat},
		{Name: "disk-0.img", Size: 8192, ReaderAt: flat},
	}}
	srv := NewServer(Options{})
	if err := srv.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vm", "vm.vmx"), []byte("x = \"1\"\n"), 0o644); err != nil {
		t.Fatalf("the scratch area lacks the directory: %v", err)
	}
	r := serveT(t, srv)
	_, root := dialRPC(t, "tcp", r.mountPort()).mnt("/holdfast/v")
	c := dialRPC(t, "tcp", r.nfsPort())
	vm := mustLookup(t, c, root, "vm")
	if st, a := c.getattr(vm); st != nfs3OK || a.typ != nf3Dir {
		t.Fatalf("GETATTR vm: %d %+v", st, a)
	}
	if got := c.names(root); !slices.Equal(got, []string{".", "..", "disk-0.img", "vm"}) {
		t.Errorf("root: %q", got)
	}
	if got := c.names(vm); !slices.Equal(got, []string{".", "..", "vm-flat.vmdk", "vm.vmx"}) {
		t.Errorf("vm: %q", got)
	}
	if st, h := c.lookup(vm, ".."); st != nfs3OK || !bytes.Equal(h, root) {
		t.Errorf("LOOKUP vm/..: %d", st)
	}
	f := mustLookup(t, c, vm, "vm-flat.vmdk")
	if st := c.write(f, 0, []byte("boot")); st != nfs3OK || string(flat.bytes()[:4]) != "boot" {
		t.Errorf("WRITE the flat file: %d", st)
	}
	_, lck := c.made(nfsCreate, vm, "vm.vmx.lck", u32(createGuarded), sattrNone)
	if _, err := os.Stat(filepath.Join(dir, "vm", "vm.vmx.lck")); err != nil || lck == nil {
		t.Errorf("CREATE in vm: %v", err)
	}
	for _, tc := range []struct {
		name string
		proc uint32
		args []func(*encoder)
	}{
		{"remove the flat file", nfsRemove, []func(*encoder){fh(vm), str("vm-flat.vmdk")}},
		{"rmdir vm", nfsRmdir, []func(*encoder){fh(root), str("vm")}},
		{"rename over the flat file", nfsRename, []func(*encoder){fh(vm), str("vm.vmx.lck"), fh(vm), str("vm-flat.vmdk")}},
	} {
		if st, _ := c.nfsCall(tc.proc, tc.args...); st != nfs3ErrAcces {
			t.Errorf("%s: %d, want ACCES", tc.name, st)
		}
	}
	srv2 := NewServer(Options{})
	if err := srv2.AddExport(exp); err != nil {
		t.Fatal(err)
	}
	c2 := dialRPC(t, "tcp", serveT(t, srv2).nfsPort())
	if st, a := c2.getattr(vm); st != nfs3OK || a.typ != nf3Dir {
		t.Errorf("the directory's handle after a restart: %d", st)
	}
	if needBinsOK("nfs-ls") {
		out := string(mustRun(t, "nfs-ls", r.url("/holdfast/v/vm")))
		if !strings.Contains(out, "vm-flat.vmdk") || !strings.Contains(out, "vm.vmx") {
			t.Errorf("nfs-ls vm:\n%s", out)
		}
	}
}
