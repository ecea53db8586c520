package nfs

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"testing"
	"time"
)

// rpcClient is a minimal ONC RPC client for the tests.
type rpcClient struct {
	t    testing.TB
	conn net.Conn
	tcp  bool
	br   *bufio.Reader
	xid  uint32
	cred func(e *encoder) // nil: AUTH_SYS root
}

func dialRPC(t testing.TB, network string, port int) *rpcClient {
	t.Helper()
	c, err := net.Dial(network, fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &rpcClient{t: t, conn: c, tcp: network == "tcp", br: bufio.NewReader(c), xid: 100}
}

// reply is a decoded RPC reply.
type reply struct {
	denied bool
	stat   uint32 // accept_stat or reject_stat
	extra  []uint32
	body   *decoder
}

func callHeader(xid, prog, vers, proc uint32, cred func(*encoder)) *encoder {
	e := &encoder{}
	e.uint32(xid)
	e.uint32(msgCall)
	e.uint32(rpcVersion)
	e.uint32(prog)
	e.uint32(vers)
	e.uint32(proc)
	if cred != nil {
		cred(e)
	} else {
		authSysCred(e)
	}
	e.uint32(authNone) // verifier
	e.uint32(0)
	return e
}

func authSysCred(e *encoder) {
	body := &encoder{}
	body.uint32(1)
	body.string("testhost")
	body.uint32(0)
	body.uint32(0)
	body.uint32(1)
	body.uint32(0)
	e.uint32(authSys)
	e.opaque(body.b)
}

// raw sends msg (one record on TCP) and returns the reply message.
func (c *rpcClient) raw(msg []byte) []byte {
	c.t.Helper()
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if c.tcp {
		msg = append(binary.BigEndian.AppendUint32(nil, 1<<31|uint32(len(msg))), msg...)
	}
	if _, err := c.conn.Write(msg); err != nil {
		c.t.Fatal(err)
	}
	if c.tcp {
		r, err := readRecord(c.br, nil, MaxRecordSize)
		if err != nil {
			c.t.Fatal(err)
		}
		return r
	}
	buf := make([]byte, maxDatagram)
	n, err := c.conn.Read(buf)
	if err != nil {
		c.t.Fatal(err)
	}
	return buf[:n]
}

// call sends a call and decodes the reply header.
func (c *rpcClient) call(prog, vers, proc uint32, args []byte) reply {
	c.t.Helper()
	c.xid++
	e := callHeader(c.xid, prog, vers, proc, c.cred)
	e.b = append(e.b, args...)
	return c.parse(c.raw(e.b), c.xid)
}

func (c *rpcClient) parse(msg []byte, xid uint32) reply {
	c.t.Helper()
	d := &decoder{b: msg}
	if got := d.uint32(); got != xid || d.uint32() != msgReply {
		c.t.Fatalf("reply xid %d, want %d", got, xid)
	}
	var r reply
	switch d.uint32() {
	case msgAccepted:
		d.uint32()
		d.opaque(maxAuthBytes)
		r.stat = d.uint32()
		if r.stat == acceptProgMismatch {
			r.extra = []uint32{d.uint32(), d.uint32()}
		}
	case msgDenied:
		r.denied = true
		r.stat = d.uint32()
		if r.stat == rejectRPCMismatch {
			r.extra = []uint32{d.uint32(), d.uint32()}
		} else {
			r.extra = []uint32{d.uint32()}
		}
	}
	if d.err != nil {
		c.t.Fatalf("reply header: %v", d.err)
	}
	r.body = d
	return r
}

// ok calls and requires SUCCESS.
func (c *rpcClient) ok(prog, vers, proc uint32, args []byte) *decoder {
	c.t.Helper()
	r := c.call(prog, vers, proc, args)
	if r.denied || r.stat != acceptSuccess {
		c.t.Fatalf("call %d/%d/%d: denied=%v stat=%d", prog, vers, proc, r.denied, r.stat)
	}
	return r.body
}

// nfsCall calls an NFS procedure and returns the NFS status and the rest.
func (c *rpcClient) nfsCall(proc uint32, args ...func(*encoder)) (uint32, *decoder) {
	c.t.Helper()
	e := &encoder{}
	for _, a := range args {
		a(e)
	}
	d := c.ok(progNFS, versNFS, proc, e.b)
	return d.uint32(), d
}

func fh(h []byte) func(*encoder)  { return func(e *encoder) { e.opaque(h) } }
func u32(v uint32) func(*encoder) { return func(e *encoder) { e.uint32(v) } }
func u64(v uint64) func(*encoder) { return func(e *encoder) { e.uint64(v) } }
func str(s string) func(*encoder) { return func(e *encoder) { e.string(s) } }
func opq(b []byte) func(*encoder) { return func(e *encoder) { e.opaque(b) } }

// mnt mounts path and returns the MOUNT status and root handle.
func (c *rpcClient) mnt(path string) (uint32, []byte) {
	c.t.Helper()
	e := &encoder{}
	e.string(path)
	d := c.ok(progMount, versMount, mountMnt, e.b)
	st := d.uint32()
	if st != mnt3OK {
		return st, nil
	}
	h := d.opaque(maxHandleBytes)
	n := d.uint32()
	for range n {
		d.uint32()
	}
	if d.err != nil {
		c.t.Fatal(d.err)
	}
	return st, h
}

// lookup returns the handle of name in dir.
func (c *rpcClient) lookup(dir []byte, name string) (uint32, []byte) {
	c.t.Helper()
	st, d := c.nfsCall(nfsLookup, fh(dir), str(name))
	if st != nfs3OK {
		return st, nil
	}
	return st, d.opaque(maxHandleBytes)
}

// fattr3 as the tests read it.
type attrs struct {
	typ, mode, nlink uint32
	size             uint64
	fsid, fileid     uint64
	mtime            uint64
}

func readAttrs(d *decoder) attrs {
	var a attrs
	a.typ, a.mode, a.nlink = d.uint32(), d.uint32(), d.uint32()
	d.uint32()
	d.uint32()
	a.size = d.uint64()
	d.uint64()
	d.uint64()
	a.fsid, a.fileid = d.uint64(), d.uint64()
	d.uint64()
	a.mtime = d.uint64()
	d.uint64()
	return a
}

func (c *rpcClient) getattr(h []byte) (uint32, attrs) {
	c.t.Helper()
	st, d := c.nfsCall(nfsGetattr, fh(h))
	if st != nfs3OK {
		return st, attrs{}
	}
	return st, readAttrs(d)
}

// read returns status, eof and data.
func (c *rpcClient) read(h []byte, off uint64, n uint32) (uint32, bool, []byte) {
	c.t.Helper()
	st, d := c.nfsCall(nfsRead, fh(h), u64(off), u32(n))
	if st != nfs3OK {
		return st, false, nil
	}
	if d.bool() {
		readAttrs(d)
	}
	cnt := d.uint32()
	eof := d.bool()
	data := d.opaque(MaxRead)
	if d.err != nil || int(cnt) != len(data) {
		c.t.Fatalf("READ reply: %v, count %d, %d bytes", d.err, cnt, len(data))
	}
	return st, eof, data
}
