package nfs

import (
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"slices"
)

// ONC RPC v2 (RFC 5531) constants.
const (
	rpcVersion = 2
	msgCall    = 0
	msgReply   = 1

	msgAccepted = 0
	msgDenied   = 1

	acceptSuccess      = 0
	acceptProgUnavail  = 1
	acceptProgMismatch = 2
	acceptProcUnavail  = 3
	acceptGarbageArgs  = 4
	acceptSystemErr    = 5

	rejectRPCMismatch = 0
	rejectAuthError   = 1

	authBadCred = 1

	authNone = 0
	authSys  = 1

	maxAuthBytes = 400 // RFC 5531: opaque_auth body<400>
)

// Record and datagram limits.
const (
	// MaxRecordSize bounds one RPC record on TCP (all fragments together):
	// a 1 MiB WRITE plus headers fits with room to spare.
	MaxRecordSize = 2<<20 + 64<<10
	maxDatagram   = 64 << 10
)

// rpcCall is a decoded call header; args holds the procedure arguments.
type rpcCall struct {
	xid              uint32
	prog, vers, proc uint32
	flavor           uint32
	uid, gid         uint32 // AUTH_SYS only
	args             []byte
	remote           netip.Addr
}

// rpcError is a call that is answered without reaching a procedure.
type rpcError struct {
	denied bool   // MSG_DENIED (else MSG_ACCEPTED)
	stat   uint32 // accept_stat or reject_stat
	lo, hi uint32 // mismatch info
	auth   uint32 // auth_stat for AUTH_ERROR
}

// parseCall decodes an RPC call header. ok is false when the message is
// not a call at all (no reply is sent); rerr is set when it is a call to
// be refused.
func parseCall(msg []byte) (c rpcCall, rerr *rpcError, ok bool) {
	d := decoder{b: msg}
	c.xid = d.uint32()
	if d.uint32() != msgCall || d.err != nil {
		return c, nil, false
	}
	if d.uint32() != rpcVersion {
		if d.err != nil {
			return c, nil, false
		}
		return c, &rpcError{denied: true, stat: rejectRPCMismatch, lo: rpcVersion, hi: rpcVersion}, true
	}
	c.prog, c.vers, c.proc = d.uint32(), d.uint32(), d.uint32()
	c.flavor = d.uint32()
	cred := d.opaque(maxAuthBytes)
	d.uint32() // verifier flavor
	d.opaque(maxAuthBytes)
	if d.err != nil {
		return c, &rpcError{denied: true, stat: rejectAuthError, auth: authBadCred}, true
	}
	switch c.flavor {
	case authNone:
	case authSys:
		cd := decoder{b: cred}
		cd.uint32()    // stamp
		cd.opaque(255) // machine name
		c.uid, c.gid = cd.uint32(), cd.uint32()
		if n := cd.uint32(); n > 16 {
			cd.fail()
		} else {
			for range n {
				cd.uint32()
			}
		}
		if cd.err != nil {
			return c, &rpcError{denied: true, stat: rejectAuthError, auth: authBadCred}, true
		}
	default:
		return c, &rpcError{denied: true, stat: rejectAuthError, auth: authBadCred}, true
	}
	c.args = d.b
	return c, nil, true
}

// replyHeaderLen is the size of an accepted reply header with an
// AUTH_NONE verifier: xid, REPLY, MSG_ACCEPTED, verf (2 words), accept_stat.
const replyHeaderLen = 24

// newReply returns an encoder with room for the record mark and the
// accepted-reply header; finishReply fills them in.
func newReply(sizeHint int) *encoder {
	return &encoder{b: make([]byte, 4+replyHeaderLen, 4+replyHeaderLen+sizeHint)}
}

// finishReply writes the accepted-reply header (and the record mark for
// TCP) into e and returns the bytes to send.
func finishReply(e *encoder, xid, stat uint32, tcp bool) []byte {
	h := e.b[4:]
	binary.BigEndian.PutUint32(h[0:], xid)
	binary.BigEndian.PutUint32(h[4:], msgReply)
	binary.BigEndian.PutUint32(h[8:], msgAccepted)
	binary.BigEndian.PutUint32(h[12:], authNone)
	binary.BigEndian.PutUint32(h[16:], 0)
	binary.BigEndian.PutUint32(h[20:], stat)
	if !tcp {
		return e.b[4:]
	}
	binary.BigEndian.PutUint32(e.b, 1<<31|uint32(len(e.b)-4))
	return e.b
}

// errorReply encodes a refused call.
func errorReply(xid uint32, r *rpcError, tcp bool) []byte {
	e := &encoder{b: make([]byte, 4, 40)}
	e.uint32(xid)
	e.uint32(msgReply)
	if r.denied {
		e.uint32(msgDenied)
		e.uint32(r.stat)
		if r.stat == rejectRPCMismatch {
			e.uint32(r.lo)
			e.uint32(r.hi)
		} else {
			e.uint32(r.auth)
		}
	} else {
		e.uint32(msgAccepted)
		e.uint32(authNone)
		e.uint32(0)
		e.uint32(r.stat)
		if r.stat == acceptProgMismatch {
			e.uint32(r.lo)
			e.uint32(r.hi)
		}
	}
	if !tcp {
		return e.b[4:]
	}
	binary.BigEndian.PutUint32(e.b, 1<<31|uint32(len(e.b)-4))
	return e.b
}

// readRecord reads one record-marked RPC message (RFC 5531 §11) of at
// most max bytes, joining fragments into buf's storage.
func readRecord(r io.Reader, buf []byte, limit int) ([]byte, error) {
	msg := buf[:0]
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if len(msg) > 0 && err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		h := binary.BigEndian.Uint32(hdr[:])
		n := int(h &^ (1 << 31))
		if len(msg)+n > limit {
			return nil, fmt.Errorf("nfs: RPC record larger than %d bytes", limit)
		}
		// Grow as bytes arrive, so a declared size costs no memory until
		// the peer sends it.
		for n > 0 {
			step := min(n, 256<<10)
			start := len(msg)
			msg = slices.Grow(msg, step)[:start+step]
			if _, err := io.ReadFull(r, msg[start:]); err != nil {
				return nil, fmt.Errorf("nfs: RPC record: %w", io.ErrUnexpectedEOF)
			}
			n -= step
		}
		if h&(1<<31) != 0 {
			return msg, nil
		}
	}
}
