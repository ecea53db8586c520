package nbd

import (
	"encoding/binary"
	"io"
	"math"
)

// readLoop demultiplexes replies to pending calls until the connection
// breaks.
func (c *Client) readLoop() {
	defer close(c.readerDone)
	for {
		if err := c.readReply(); err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *Client) readReply() error {
	var b [chunkHeaderLen]byte
	if _, err := io.ReadFull(c.r, b[:4]); err != nil {
		return closedErr("read reply", err)
	}
	switch m := binary.BigEndian.Uint32(b[:]); m {
	case simpleReplyMagic:
		if _, err := io.ReadFull(c.r, b[4:simpleReplyLen]); err != nil {
			return closedErr("read simple reply", err)
		}
		return c.handleSimple(binary.BigEndian.Uint32(b[4:]), binary.BigEndian.Uint64(b[8:]))
	case structuredReplyMagic:
		if _, err := io.ReadFull(c.r, b[4:]); err != nil {
			return closedErr("read reply chunk", err)
		}
		return c.handleChunk(chunkHeader{
			flags:  binary.BigEndian.Uint16(b[4:]),
			typ:    binary.BigEndian.Uint16(b[6:]),
			handle: binary.BigEndian.Uint64(b[8:]),
			length: binary.BigEndian.Uint32(b[16:]),
		})
	default:
		return protoErrorf("bad reply magic %#x", m)
	}
}

func (c *Client) lookup(handle uint64) (*call, error) {
	c.mu.Lock()
	cl := c.pending[handle]
	c.mu.Unlock()
	if cl == nil {
		return nil, protoErrorf("reply for unknown handle %#x", handle)
	}
	return cl, nil
}

func (c *Client) handleSimple(code uint32, handle uint64) error {
	cl, err := c.lookup(handle)
	if err != nil {
		return err
	}
	if code != 0 {
		c.complete(cl, newReplyError(cl.typ, code, ""))
		return nil
	}
	switch cl.typ {
	case cmdRead:
		if c.structured {
			return protoErrorf("simple reply to NBD_CMD_READ after structured replies were negotiated")
		}
		if err := c.readData(cl, 0, int(cl.length)); err != nil {
			return err
		}
	case cmdBlockStatus:
		c.complete(cl, protoErrorf("simple success reply to NBD_CMD_BLOCK_STATUS"))
		return nil
	}
	c.complete(cl, nil)
	return nil
}

func (c *Client) handleChunk(h chunkHeader) error {
	if !c.structured {
		return protoErrorf("structured reply chunk without negotiation")
	}
	cl, err := c.lookup(h.handle)
	if err != nil {
		return err
	}
	if err := c.readChunk(cl, h); err != nil {
		return err
	}
	if h.flags&replyFlagDone != 0 {
		c.complete(cl, cl.result())
	}
	return nil
}

func (c *Client) readChunk(cl *call, h chunkHeader) error {
	switch {
	case h.typ == chunkNone:
		if h.length != 0 || h.flags&replyFlagDone == 0 {
			return protoErrorf("bad NBD_REPLY_TYPE_NONE chunk (length %d, flags %#x)", h.length, h.flags)
		}
		return nil
	case h.typ == chunkOffsetData:
		return c.readDataChunk(cl, h)
	case h.typ == chunkOffsetHole:
		return c.readHoleChunk(cl, h)
	case h.typ == chunkBlockStatus:
		return c.readStatusChunk(cl, h)
	case h.typ&chunkErrorBit != 0:
		return c.readErrorChunk(cl, h)
	}
	return protoErrorf("unknown structured reply type %d", h.typ)
}

func (c *Client) readDataChunk(cl *call, h chunkHeader) error {
	if cl.typ != cmdRead || h.length < 9 {
		return protoErrorf("OFFSET_DATA chunk of %d bytes for %s", h.length, cmdName(cl.typ))
	}
	var b [8]byte
	if _, err := io.ReadFull(c.r, b[:]); err != nil {
		return closedErr("read data chunk", err)
	}
	n := uint64(h.length) - 8
	rel, err := cl.claim(binary.BigEndian.Uint64(b[:]), n)
	if err != nil {
		return err
	}
	return c.readData(cl, int(rel), int(n))
}

// readData reads n bytes of READ data into cl.buf[rel:], or discards them
// when the caller has gone.
func (c *Client) readData(cl *call, rel, n int) error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	var err error
	if cl.abandoned {
		_, err = io.CopyN(io.Discard, c.r, int64(n))
	} else {
		_, err = io.ReadFull(c.r, cl.buf[rel:rel+n])
	}
	if err != nil {
		return closedErr("read data", err)
	}
	return nil
}

func (c *Client) readHoleChunk(cl *call, h chunkHeader) error {
	if cl.typ != cmdRead || h.length != 12 {
		return protoErrorf("OFFSET_HOLE chunk of %d bytes for %s", h.length, cmdName(cl.typ))
	}
	var b [12]byte
	if _, err := io.ReadFull(c.r, b[:]); err != nil {
		return closedErr("read hole chunk", err)
	}
	size := uint64(binary.BigEndian.Uint32(b[8:]))
	if size == 0 {
		return protoErrorf("OFFSET_HOLE chunk of size 0")
	}
	rel, err := cl.claim(binary.BigEndian.Uint64(b[:]), size)
	if err != nil {
		return err
	}
	cl.mu.Lock()
	if !cl.abandoned {
		clear(cl.buf[rel : rel+size])
	}
	cl.mu.Unlock()
	return nil
}

func (c *Client) readStatusChunk(cl *call, h chunkHeader) error {
	if cl.typ != cmdBlockStatus || h.length > maxBlockStatusPayload {
		return protoErrorf("BLOCK_STATUS chunk of %d bytes for %s", h.length, cmdName(cl.typ))
	}
	data, err := readBounded(c.r, int(h.length))
	if err != nil {
		return closedErr("read block status chunk", err)
	}
	id, descs, err := parseBlockStatus(data)
	if err != nil {
		return err
	}
	if cl.status == nil {
		cl.status = map[uint32][]descriptor{}
	}
	if _, dup := cl.status[id]; dup {
		return protoErrorf("two BLOCK_STATUS chunks for context %d", id)
	}
	cl.status[id] = descs
	return nil
}

func (c *Client) readErrorChunk(cl *call, h chunkHeader) error {
	if h.length > maxErrorPayload {
		return protoErrorf("error chunk of %d bytes", h.length)
	}
	data, err := readBounded(c.r, int(h.length))
	if err != nil {
		return closedErr("read error chunk", err)
	}
	ec, err := parseErrorChunk(h.typ, data)
	if err != nil {
		return err
	}
	if cl.err != nil {
		return nil
	}
	e := newReplyError(cl.typ, ec.code, ec.message)
	if ec.code == 0 {
		e.Code = codeEIO
		e.Message = "server sent error value 0: " + e.Message
	}
	if ec.hasOffset && ec.offset <= math.MaxInt64 {
		e.Offset = int64(ec.offset)
	}
	cl.err = e
	return nil
}
