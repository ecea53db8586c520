package nbd

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// transmission serves the requests of one connection.
type transmission struct {
	ctx        context.Context
	s          *Server
	ss         *serverSession
	exp        *Export
	flags      TransmissionFlags
	structured bool
	metaAlloc  bool

	slots  chan struct{}       // requests in flight
	budget *semaphore.Weighted // buffered bytes of this connection
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
		budget: semaphore.NewWeighted(o.MaxBufferedBytes),
	}
}

// run reads requests and serves each in its own goroutine, at most
// MaxInFlight at a time. It returns after the replies in flight were sent.
func (t *transmission) run() error {
	defer t.wg.Wait()
	for {
		req, payload, n, err := t.readRequest()
		if err != nil {
			if t.s.isClosed() {
				return nil
			}
			return err
		}
		if req.typ == cmdDisc {
			t.release(n)
			return nil
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer t.release(n)
			t.handle(req, payload)
			t.s.pools.put(payload)
		}()
	}
}

// readRequest reads one request (and a WRITE payload), first reserving a
// slot and its buffer bytes (the payload, or the reply of a READ) in the
// connection's and the server's budget. It returns the bytes reserved.
func (t *transmission) readRequest() (request, []byte, int64, error) {
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
	var n int64 // a READ over MaxRequestSize is refused (EINVAL) without a buffer
	if (req.typ == cmdRead || req.typ == cmdWrite) && req.length <= MaxRequestSize {
		n = int64(req.length)
	}
	if err := t.acquire(n); err != nil {
		return request{}, nil, 0, err
	}
	if req.typ != cmdWrite {
		return req, nil, n, nil
	}
	payload, err := t.readPayload(int(req.length))
	if err != nil {
		t.release(n)
		return request{}, nil, 0, closedErr("read write payload", err)
	}
	return req, payload, n, nil
}

// readPayload reads a WRITE payload into a pooled buffer; large ones grow
// with the data that actually arrives so a truncated request cannot pin
// 32 MiB.
func (t *transmission) readPayload(n int) ([]byte, error) {
	if n <= 4<<20 {
		b := t.s.pools.get(n)
		if _, err := io.ReadFull(t.ss.r, b); err != nil {
			t.s.pools.put(b)
			return nil, err
		}
		return b, nil
	}
	return readBounded(t.ss.r, n)
}

// acquire reserves a request slot and n buffer bytes, in the connection's
// budget and then the server's. Only run calls it, so a connection waits
// for one request's bytes at a time.
func (t *transmission) acquire(n int64) error {
	select {
	case t.slots <- struct{}{}:
	case <-t.ctx.Done():
		return t.ctx.Err()
	}
	if n == 0 {
		return nil
	}
	if err := t.budget.Acquire(t.ctx, n); err != nil {
		<-t.slots
		return err
	}
	if err := t.s.buf.acquire(t.ctx, n); err != nil {
		t.budget.Release(n)
		<-t.slots
		return err
	}
	return nil
}

// release frees a slot and n buffer bytes.
func (t *transmission) release(n int64) {
	if n > 0 {
		t.s.buf.release(n)
		t.budget.Release(n)
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
	_ = t.ss.raw.SetWriteDeadline(clock.Deadline(t.s.opts.ReplyTimeout))
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
