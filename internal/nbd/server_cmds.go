package nbd

import (
	"errors"
	"fmt"
	"io"
	"net"
)

// allowedFlags returns the command flags accepted for cmd, and false for
// commands the server does not implement.
func allowedFlags(cmd uint16) (uint16, bool) {
	switch cmd {
	case cmdRead:
		return cmdFlagFUA | cmdFlagDF, true
	case cmdWrite, cmdFlush, cmdTrim:
		return cmdFlagFUA, true
	case cmdWriteZeroes:
		return cmdFlagFUA | cmdFlagNoHole, true
	case cmdBlockStatus:
		return cmdFlagReqOne, true
	}
	return 0, false
}

// validate checks a request against the export; a non-zero code is the
// NBD error to reply with.
func (t *transmission) validate(req request) (uint32, string) {
	allowed, known := allowedFlags(req.typ)
	if !known {
		return codeEINVAL, "unknown command " + cmdName(req.typ)
	}
	if req.flags&^allowed != 0 {
		return codeEINVAL, fmt.Sprintf("unsupported flags %#x for %s", req.flags, cmdName(req.typ))
	}
	writes := req.typ == cmdWrite || req.typ == cmdTrim || req.typ == cmdWriteZeroes
	if writes && t.exp.WriterAt == nil {
		return codeEPERM, "export is read-only"
	}
	if req.typ == cmdFlush {
		return 0, ""
	}
	size := uint64(t.exp.Size)
	if req.offset > size || uint64(req.length) > size-req.offset {
		if writes {
			return codeENOSPC, "request beyond end of export"
		}
		return codeEINVAL, "request beyond end of export"
	}
	switch req.typ {
	case cmdRead:
		if req.length == 0 || req.length > MaxRequestSize {
			return codeEINVAL, fmt.Sprintf("read length %d outside 1..%d", req.length, MaxRequestSize)
		}
	case cmdBlockStatus:
		if !t.metaAlloc || req.length == 0 {
			return codeEINVAL, "no meta context negotiated or zero length"
		}
	}
	return 0, ""
}

func (t *transmission) handle(req request, payload []byte) {
	if code, msg := t.validate(req); code != 0 {
		t.replyError(req, code, msg)
		return
	}
	switch req.typ {
	case cmdRead:
		t.doRead(req)
	case cmdWrite:
		t.replyResult(req, t.doWrite(req, payload))
	case cmdFlush:
		t.replyResult(req, t.flush())
	case cmdTrim:
		t.replyResult(req, t.doTrim(req))
	case cmdWriteZeroes:
		t.replyResult(req, t.doWriteZeroes(req))
	case cmdBlockStatus:
		t.doBlockStatus(req)
	}
}

// readFull reads exactly len(p) bytes at off from the export.
func (t *transmission) readFull(p []byte, off int64) error {
	n, err := t.exp.ReaderAt.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = fmt.Errorf("short read of %d/%d bytes at %d: %w", n, len(p), off, io.ErrUnexpectedEOF)
	}
	return err
}

// doRead answers READ with a simple reply, or with OFFSET_DATA and
// OFFSET_HOLE chunks following the export's Allocation.
func (t *transmission) doRead(req request) {
	if !t.structured {
		buf := t.s.pools.get(int(req.length))
		defer t.s.pools.put(buf)
		if err := t.readFull(buf, int64(req.offset)); err != nil {
			t.replySimple(req.handle, errorCode(err), nil)
			return
		}
		t.replySimple(req.handle, 0, buf)
		return
	}
	segs := t.readPlan(req)
	dataLen := 0
	for _, s := range segs {
		if !s.zero {
			dataLen += int(s.length)
		}
	}
	buf := t.s.pools.get(dataLen)
	defer t.s.pools.put(buf)
	var parts net.Buffers
	for i, s := range segs {
		flags := doneFlag(i, len(segs))
		if s.zero {
			parts = append(parts, chunk(req.handle, flags, chunkOffsetHole, be64(uint64(s.offset)), be32(uint32(s.length)))...)
			continue
		}
		p := buf[:s.length]
		buf = buf[s.length:]
		if err := t.readFull(p, s.offset); err != nil {
			t.replyError(req, errorCode(err), err.Error())
			return
		}
		parts = append(parts, chunk(req.handle, flags, chunkOffsetData, be64(uint64(s.offset)), p)...)
	}
	t.write(parts)
}

func doneFlag(i, n int) uint16 {
	if i == n-1 {
		return replyFlagDone
	}
	return 0
}

func (t *transmission) doWrite(req request, payload []byte) error {
	if len(payload) > 0 {
		if _, err := t.exp.WriterAt.WriteAt(payload, int64(req.offset)); err != nil {
			return err
		}
	}
	return t.fua(req)
}

func (t *transmission) fua(req request) error {
	if req.flags&cmdFlagFUA != 0 {
		return t.flush()
	}
	return nil
}

func (t *transmission) flush() error {
	if f := flusher(t.exp); f != nil {
		return f()
	}
	return nil
}

// flusher returns the export's flush function, if any.
func flusher(e *Export) func() error {
	if e.Flush != nil {
		return e.Flush
	}
	if s, ok := e.WriterAt.(interface{ Sync() error }); ok {
		return s.Sync
	}
	return nil
}

func (t *transmission) doTrim(req request) error {
	if tr, ok := t.exp.WriterAt.(TrimmerAt); ok && req.length > 0 {
		if err := tr.TrimAt(int64(req.offset), int64(req.length)); err != nil {
			return err
		}
	}
	return t.fua(req)
}

func (t *transmission) doWriteZeroes(req request) error {
	off, n := int64(req.offset), int64(req.length)
	if zw, ok := t.exp.WriterAt.(ZeroWriterAt); ok && n > 0 {
		if err := zw.WriteZeroesAt(off, n); err != nil {
			return err
		}
		return t.fua(req)
	}
	for n > 0 {
		k := min(n, int64(len(t.s.zero)))
		if _, err := t.exp.WriterAt.WriteAt(t.s.zero[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return t.fua(req)
}

func (t *transmission) doBlockStatus(req request) {
	descs, err := t.allocation(int64(req.offset), int64(req.length), maxServerDescriptors)
	if err != nil {
		t.replyError(req, errorCode(err), err.Error())
		return
	}
	if req.flags&cmdFlagReqOne != 0 {
		descs = descs[:1]
	}
	payload := encodeBlockStatus(baseAllocationID, descs)
	t.write(chunk(req.handle, replyFlagDone, chunkBlockStatus, payload))
}
