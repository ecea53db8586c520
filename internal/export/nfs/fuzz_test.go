package nfs

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// FuzzRecord feeds arbitrary bytes to the TCP record reader and the call
// header parser.
func FuzzRecord(f *testing.F) {
	call := callHeader(1, progNFS, versNFS, nfsGetattr, nil).b
	f.Add(append(binary.BigEndian.AppendUint32(nil, 1<<31|uint32(len(call))), call...))
	f.Add(append(binary.BigEndian.AppendUint32(nil, 4), 0, 0, 0, 1, 0x80, 0, 0, 0))
	f.Add(binary.BigEndian.AppendUint32(nil, 1<<31|MaxRecordSize+1))
	f.Add([]byte{0x80, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			msg, err := readRecord(r, nil, 1<<16)
			if err != nil {
				return
			}
			if len(msg) > 1<<16 {
				t.Fatalf("record of %d bytes", len(msg))
			}
			parseCall(msg)
		}
	})
}

// fuzzServer is a server with one export whose handles the seeds use,
// with a scratch area (in a temporary directory) and a VM folder.
func fuzzServer(f *testing.F) *Server {
	srv := NewServer(Options{})
	exp, _, rw := testExport("/holdfast/x")
	exp.Scratch = f.TempDir()
	exp.Files = append(exp.Files, File{Name: "vm/vm-flat.vmdk", Size: int64(len(rw.b)), ReaderAt: rw, WriterAt: rw})
	if err := srv.AddExport(exp); err != nil {
		f.Fatal(err)
	}
	return srv
}

// FuzzNFSCall feeds arbitrary messages to every program: the server must
// answer (or drop) without panicking, and every reply must be a
// well-formed RPC reply to the same xid.
func FuzzNFSCall(f *testing.F) {
	srv := fuzzServer(f)
	id := exportHash("/holdfast/x")
	root, disk := rootHandle(id), fileHandle(id, nameHash("disk-1.img"))
	seed := func(prog, vers, proc uint32, args ...func(*encoder)) {
		e := callHeader(7, prog, vers, proc, nil)
		for _, a := range args {
			a(e)
		}
		f.Add(uint8(prog%3), e.b)
	}
	seed(progNFS, versNFS, nfsGetattr, fh(root))
	seed(progNFS, versNFS, nfsLookup, fh(root), str("disk-0.img"))
	seed(progNFS, versNFS, nfsRead, fh(disk), u64(0), u32(4096))
	seed(progNFS, versNFS, nfsWrite, fh(disk), u64(8), u32(4), u32(fileSync), opq([]byte("abcd")))
	seed(progNFS, versNFS, nfsReaddirplus, fh(root), u64(0), u64(0), u32(512), u32(4096))
	seed(progNFS, versNFS, nfsReaddir, fh(root), u64(1), u64(0), u32(512))
	seed(progNFS, versNFS, nfsSetattr, fh(disk), u32(1), u32(0o600), u32(0), u32(0), u32(1), u64(0), u32(2), u64(5), u32(0), u32(0))
	seed(progNFS, versNFS, nfsCreate, fh(root), str("disk-1.img"), u32(createGuarded), u32(0), u32(0), u32(0), u32(0), u32(0), u32(0))
	seed(progNFS, versNFS, nfsCommit, fh(disk), u64(0), u32(0))
	seed(progNFS, versNFS, nfsAccess, fh(disk), u32(0x3f))
	seed(progNFS, versNFS, nfsFsinfo, fh(root))
	vm := fileHandle(id, nameHash("vm"))
	none := func(e *encoder) { sattrNone(e) }
	seed(progNFS, versNFS, nfsMkdir, fh(root), str(".lck-1"), none)
	seed(progNFS, versNFS, nfsCreate, fh(vm), str("vm.vswp"), u32(createUnchecked), sattrSize(1<<20))
	seed(progNFS, versNFS, nfsCreate, fh(vm), str("x.lck"), u32(createExclusive), u64(7))
	seed(progNFS, versNFS, nfsRename, fh(vm), str("vm.vswp"), fh(root), str("moved"))
	seed(progNFS, versNFS, nfsRemove, fh(root), str("moved"))
	seed(progNFS, versNFS, nfsRmdir, fh(root), str(".lck-1"))
	seed(progNFS, versNFS, nfsGetattr, fh(scratchHandle(id, 12345)))
	seed(progNFS, versNFS, nfsReaddirplus, fh(vm), u64(0), u64(0), u32(512), u32(4096))
	seed(progMount, versMount, mountMnt, str("/holdfast/x/vm"))
	seed(progMount, versMount, mountMnt, str("/holdfast/x"))
	seed(progMount, versMount, mountExport)
	seed(progPortmap, versPortmap, pmapGetport, u32(progNFS), u32(versNFS), u32(protoTCP), u32(0))
	seed(progPortmap, versPortmap, pmapDump)
	progs := []uint32{progPortmap, progNFS, progMount}
	f.Fuzz(func(t *testing.T, which uint8, msg []byte) {
		prog := progs[int(which)%len(progs)]
		for _, tcp := range []bool{false, true} {
			reply := srv.handle(prog, msg, netip.MustParseAddr("127.0.0.1"), tcp)
			if reply == nil {
				continue
			}
			if tcp {
				if h := binary.BigEndian.Uint32(reply); h != 1<<31|uint32(len(reply)-4) {
					t.Fatalf("record mark %#x for %d bytes", h, len(reply)-4)
				}
				reply = reply[4:]
			}
			d := decoder{b: reply}
			if xid := d.uint32(); len(msg) < 4 || xid != binary.BigEndian.Uint32(msg) || d.uint32() != msgReply {
				t.Fatalf("reply without the call's xid")
			}
			if len(reply)%4 != 0 {
				t.Fatalf("reply of %d bytes is not XDR-aligned", len(reply))
			}
		}
	})
}
