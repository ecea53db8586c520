package nbd

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
)

const tokenSize = 1 << 20 // unit of the per-connection buffer budget

// transmission serves the requests of one connection.
type transmission struct {
	ctx        context.Context
	s          *Server
	ss         *serverSession
	exp        *Export
	flags      TransmissionFlags
	structured bool
	metaAlloc  bool

	slots  chan struct{} // requests in flight
	tokens chan struct{} // buffered bytes, in tokenSize units
	wg     sync.WaitGroup

	wmu  sync.Mutex
	werr error
}

func newTransmission(ctx context.Context, ss *serverSession, exp *Export) *transmission {
	o := ss.s.opts
	return &transmission{
		ctx: ctx, s: ss.s, ss: ss, exp: exp, flags: ss.flags(exp),
		structured: ss.structured, metaAlloc: ss.metaAlloc && ss.metaExp == exp,
		slots:  make(chan struct{}, o.MaxInFlight),
		tokens: make(chan struct{}, o.MaxBufferedBytes/tokenSize),
	}
}

// run reads requests and serves each in its own goroutine, at most
// MaxInFlight at a time. It returns after the replies in flight were sent.
func (t *transmission) run() error {
	defer t.wg.Wait()
	for {
		req, payload, tok, err := t.readRequest()
		if err != nil {
			if t.s.isClosed() {
				return nil
			}
			return err
		}
		if req.typ == cmdDisc {
			t.release(tok)
			return nil
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer t.release(tok)
			t.handle(req, payload)
		}()
	}
}

// readRequest reads one request (and a WRITE payload), first reserving a
// slot and buffer tokens for it. Only run calls it, so waiting for tokens
// one at a time cannot deadlock.
func (t *transmission) readRequest() (request, []byte, int, error) {
	var b [requestHeaderLen]byte
	if _, err := io.ReadFull(t.ss.r, b[:]); err != nil {
		return request{}, nil, 0, closedErr("read request", err)
	}
	req, err := decodeRequest(b[:])
	if err != nil {
		return request{}, nil, 0, err
	}
	if req.typ == cmdWrite && req.length > MaxRequestSize {
		return request{}, nil, 0, protoErrorf("NBD_CMD_WRITE of %d bytes (max %d)", req.length, MaxRequestSize)
	}
	tok := 0
	if (req.typ == cmdRead || req.typ == cmdWrite) && req.length <= MaxRequestSize {
		tok = int((req.length + tokenSize - 1) / tokenSize)
	}
	if err := t.acquire(tok); err != nil {
		return request{}, nil, 0, err
	}
	if req.typ != cmdWrite {
		return req, nil, tok, nil
	}
	payload, err := readPayload(t.ss.r, int(req.length))
	if err != nil {
		t.release(tok)
		return request{}, nil, 0, closedErr("read write payload", err)
	}
	return req, payload, tok, nil
}

// readPayload reads a WRITE payload; large ones grow with the data that
// actually arrives so a truncated request cannot pin 32 MiB.
func readPayload(r io.Reader, n int) ([]byte, error) {
	if n <= 4<<20 {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	return readBounded(r, n)
}

func (t *transmission) acquire(tok int) error {
	select {
	case t.slots <- struct{}{}:
	case <-t.ctx.Done():
		return t.ctx.Err()
	}
	for i := 0; i < tok; i++ {
		select {
		case t.tokens <- struct{}{}:
		case <-t.ctx.Done():
			t.release(i)
			return t.ctx.Err()
		}
	}
	return nil
}

// release frees a slot and tok tokens.
func (t *transmission) release(tok int) {
	for range tok {
		<-t.tokens
	}
	<-t.slots
}

// write sends reply bytes atomically; a failed write breaks the connection.
func (t *transmission) write(bufs net.Buffers) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.werr != nil {
		return
	}
	if _, err := bufs.WriteTo(t.ss.conn); err != nil {
		t.werr = fmt.Errorf("nbd: send reply: %w", err)
		_ = t.ss.raw.Close()
	}
}

func (t *transmission) replySimple(handle uint64, code uint32, data []byte) {
	hdr := make([]byte, simpleReplyLen)
	encodeSimpleReply(hdr, code, handle)
	bufs := net.Buffers{hdr}
	if len(data) > 0 {
		bufs = append(bufs, data)
	}
	t.write(bufs)
}

// chunk builds a structured reply chunk; payload parts follow the header.
func chunk(handle uint64, flags, typ uint16, parts ...[]byte) net.Buffers {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	hdr := make([]byte, chunkHeaderLen)
	encodeChunkHeader(hdr, chunkHeader{flags: flags, typ: typ, handle: handle, length: uint32(n)})
	return append(net.Buffers{hdr}, parts...)
}

// replyError reports a failed request.
func (t *transmission) replyError(req request, code uint32, msg string) {
	if !t.structured {
		t.replySimple(req.handle, code, nil)
		return
	}
	t.write(chunk(req.handle, replyFlagDone, chunkError, encodeErrorChunk(code, msg)))
}

// replyResult reports success or the error's NBD code.
func (t *transmission) replyResult(req request, err error) {
	if err != nil {
		t.replyError(req, errorCode(err), err.Error())
		return
	}
	t.replySimple(req.handle, 0, nil)
}

func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
