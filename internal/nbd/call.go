package nbd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"
)

// abandonGrace is how long a cancelled caller waits for the reader to
// finish copying a chunk into its buffer before breaking the connection.
const abandonGrace = 2 * time.Second

// call is one request awaiting its reply. Fields below "reader only" are
// touched by the reader goroutine until done is closed, and by the caller
// after that.
type call struct {
	handle uint64
	typ    uint16
	offset uint64
	length uint32
	done   chan struct{}
	res    error

	mu        sync.Mutex // held by the reader while it writes into buf
	buf       []byte     // READ destination, len == length
	abandoned bool       // caller gone: discard data

	// reader only
	spans  spanSet
	status map[uint32][]descriptor
	err    error
}

// result is the outcome of a structured reply once NBD_REPLY_FLAG_DONE came.
func (cl *call) result() error {
	if cl.err != nil {
		return cl.err
	}
	if cl.typ == cmdRead && cl.spans.total != uint64(cl.length) {
		return protoErrorf("NBD_CMD_READ reply covered %d of %d bytes", cl.spans.total, cl.length)
	}
	return nil
}

// claim records that [off, off+n) of the request is answered by a content
// chunk and returns the offset relative to the request.
func (cl *call) claim(off, n uint64) (uint64, error) {
	if off < cl.offset || n > uint64(cl.length) || off-cl.offset > uint64(cl.length)-n {
		return 0, protoErrorf("chunk [%d,+%d) outside request [%d,+%d)", off, n, cl.offset, cl.length)
	}
	rel := off - cl.offset
	if !cl.spans.add(rel, rel+n) {
		return 0, protoErrorf("chunk [%d,+%d) overlaps an earlier chunk", off, n)
	}
	return rel, nil
}

// spanSet is a set of disjoint half-open intervals, sorted and merged.
type spanSet struct {
	s     [][2]uint64
	total uint64
}

// add inserts [a,b); it reports false if the range overlaps the set.
func (ss *spanSet) add(a, b uint64) bool {
	i := sort.Search(len(ss.s), func(i int) bool { return ss.s[i][1] > a })
	if i < len(ss.s) && ss.s[i][0] < b {
		return false
	}
	ss.total += b - a
	joinPrev := i > 0 && ss.s[i-1][1] == a
	joinNext := i < len(ss.s) && ss.s[i][0] == b
	switch {
	case joinPrev && joinNext:
		ss.s[i-1][1] = ss.s[i][1]
		ss.s = append(ss.s[:i], ss.s[i+1:]...)
	case joinPrev:
		ss.s[i-1][1] = b
	case joinNext:
		ss.s[i][0] = a
	default:
		ss.s = append(ss.s, [2]uint64{})
		copy(ss.s[i+1:], ss.s[i:])
		ss.s[i] = [2]uint64{a, b}
	}
	return true
}

// notSentError marks a request that never reached the wire.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// start registers and sends a request. buf receives READ data; payload is
// sent after the header (WRITE).
func (c *Client) start(ctx context.Context, req request, buf, payload []byte) (*call, error) {
	if err := c.Err(); err != nil {
		return nil, err
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("nbd: %s: %w", cmdName(req.typ), ctx.Err())
	case <-c.readerDone:
		return nil, c.Err()
	}
	cl := &call{typ: req.typ, offset: req.offset, length: req.length, buf: buf, done: make(chan struct{})}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		<-c.slots
		return nil, c.err
	}
	c.handle++
	cl.handle, req.handle = c.handle, c.handle
	c.pending[cl.handle] = cl
	c.inflight.Add(1)
	c.mu.Unlock()
	if err := c.send(ctx, req, payload); err != nil {
		var ns *notSentError
		if errors.As(err, &ns) {
			c.complete(cl, ns.err)
			return nil, ns.err
		}
		c.fail(err)
		return nil, err
	}
	return cl, nil
}

// send writes a request header and payload, serialized with other senders
// through the wlock channel so that waiting for the lock honours ctx.
func (c *Client) send(ctx context.Context, req request, payload []byte) error {
	select {
	case c.wlock <- struct{}{}:
	case <-ctx.Done():
		return &notSentError{fmt.Errorf("nbd: %s: %w", cmdName(req.typ), ctx.Err())}
	}
	defer func() { <-c.wlock }()
	return c.sendLocked(ctx, req, payload)
}

func (c *Client) sendLocked(ctx context.Context, req request, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return &notSentError{fmt.Errorf("nbd: %s: %w", cmdName(req.typ), err)}
	}
	if err := c.Err(); err != nil {
		return &notSentError{err}
	}
	var hdr [requestHeaderLen]byte
	req.encode(hdr[:])
	err := withDeadlineSetter(ctx, c.raw.SetWriteDeadline, func() error {
		bufs := net.Buffers{hdr[:]}
		if len(payload) > 0 {
			bufs = append(bufs, payload)
		}
		_, err := bufs.WriteTo(c.conn)
		return err
	})
	if err != nil {
		return fmt.Errorf("nbd: send %s: %w", cmdName(req.typ), err)
	}
	return nil
}

// wait blocks until the reply to cl arrived or ctx ends.
func (c *Client) wait(ctx context.Context, cl *call) error {
	select {
	case <-cl.done:
		return cl.res
	case <-ctx.Done():
	}
	select {
	case <-cl.done:
		return cl.res
	default:
	}
	c.abandon(cl)
	return fmt.Errorf("nbd: %s: %w", cmdName(cl.typ), ctx.Err())
}

// abandon stops the reader from writing into cl.buf. If the reader is stuck
// mid-chunk for too long, the connection is broken to free it.
func (c *Client) abandon(cl *call) {
	locked := make(chan struct{})
	go func() {
		cl.mu.Lock()
		cl.abandoned = true
		cl.mu.Unlock()
		close(locked)
	}()
	t := time.NewTimer(abandonGrace)
	defer t.Stop()
	select {
	case <-locked:
	case <-t.C:
		c.fail(errors.New("nbd: connection stalled while a cancelled request was receiving data"))
		<-locked
	}
}

// complete finishes a pending call with err (once).
func (c *Client) complete(cl *call, err error) {
	c.mu.Lock()
	_, ok := c.pending[cl.handle]
	delete(c.pending, cl.handle)
	c.mu.Unlock()
	if ok {
		c.finish(cl, err)
	}
}

func (c *Client) finish(cl *call, err error) {
	cl.res = err
	c.inflight.Add(-1)
	<-c.slots
	close(cl.done)
}

// fail breaks the connection: every pending call fails with err, and so
// does every later request.
func (c *Client) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		if errors.Is(err, ErrClosed) {
			c.err = ErrClosed
		} else {
			c.err = fmt.Errorf("nbd: connection failed: %w", err)
		}
	}
	err = c.err
	calls := c.pending
	c.pending = map[uint64]*call{}
	c.mu.Unlock()
	_ = c.raw.Close()
	for _, cl := range calls {
		cl.mu.Lock()
		cl.abandoned = true
		cl.mu.Unlock()
		c.finish(cl, err)
	}
}
