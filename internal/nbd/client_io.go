package nbd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
)

// ReadAt implements io.ReaderAt. It is safe for concurrent use; see
// ReadAtContext.
func (c *Client) ReadAt(p []byte, off int64) (int, error) {
	ctx, cancel := c.opContext()
	defer cancel()
	return c.ReadAtContext(ctx, p, off)
}

// ReadAtContext reads len(p) bytes at off. Reads larger than the server's
// maximum block size (at most 32 MiB) are split and pipelined. Like
// io.ReaderAt, a read past the end returns the bytes before it and io.EOF.
func (c *Client) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("nbd: read at negative offset %d", off)
	}
	size := c.info.Size
	if off >= size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	n, eof := len(p), error(nil)
	if int64(n) > size-off {
		n, eof = int(size-off), io.EOF
	}
	if err := c.readAligned(ctx, p[:n], off); err != nil {
		return 0, fmt.Errorf("nbd: read %d bytes at %d: %w", n, off, err)
	}
	return n, eof
}

// readAligned honours the server's minimum block size with a bounce buffer.
func (c *Client) readAligned(ctx context.Context, p []byte, off int64) error {
	mb := int64(c.info.MinBlockSize)
	if mb <= 1 || (off%mb == 0 && int64(len(p))%mb == 0) {
		return c.readRange(ctx, p, off)
	}
	start := off - off%mb
	end := min((off+int64(len(p))+mb-1)/mb*mb, c.info.Size)
	bounce := make([]byte, end-start)
	if err := c.readRange(ctx, bounce, start); err != nil {
		return err
	}
	copy(p, bounce[off-start:])
	return nil
}

// readRange issues pipelined READ requests covering p and waits for all.
func (c *Client) readRange(ctx context.Context, p []byte, off int64) error {
	calls := make([]*call, 0, len(p)/c.maxReq+1)
	var first error
	for done := 0; done < len(p); {
		n := min(len(p)-done, c.maxReq)
		req := request{typ: cmdRead, offset: uint64(off) + uint64(done), length: uint32(n)}
		cl, err := c.start(ctx, req, p[done:done+n], nil)
		if err != nil {
			first = err
			break
		}
		calls = append(calls, cl)
		done += n
	}
	return c.waitAll(ctx, calls, first)
}

func (c *Client) waitAll(ctx context.Context, calls []*call, first error) error {
	for _, cl := range calls {
		if err := c.wait(ctx, cl); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// WriteAt implements io.WriterAt; see WriteAtContext.
func (c *Client) WriteAt(p []byte, off int64) (int, error) {
	ctx, cancel := c.opContext()
	defer cancel()
	return c.WriteAtContext(ctx, p, off)
}

// WriteAtContext writes p at off, split into pipelined requests of at most
// the server's maximum block size. Offsets and lengths must respect the
// server's minimum block size.
func (c *Client) WriteAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if err := c.checkWrite(off, int64(len(p))); err != nil {
		return 0, err
	}
	calls := make([]*call, 0, len(p)/c.maxReq+1)
	var first error
	for done := 0; done < len(p); {
		n := min(len(p)-done, c.maxReq)
		req := request{typ: cmdWrite, offset: uint64(off) + uint64(done), length: uint32(n)}
		cl, err := c.start(ctx, req, nil, p[done:done+n])
		if err != nil {
			first = err
			break
		}
		calls = append(calls, cl)
		done += n
	}
	if err := c.waitAll(ctx, calls, first); err != nil {
		return 0, fmt.Errorf("nbd: write %d bytes at %d: %w", len(p), off, err)
	}
	return len(p), nil
}

func (c *Client) checkWrite(off, length int64) error {
	if c.info.ReadOnly() {
		return fmt.Errorf("nbd: export %q is read-only: %w", c.info.Name, syscall.EPERM)
	}
	if off < 0 || length < 0 || off > c.info.Size || length > c.info.Size-off {
		return fmt.Errorf("nbd: write [%d,+%d) beyond export size %d: %w", off, length, c.info.Size, syscall.ENOSPC)
	}
	if mb := int64(c.info.MinBlockSize); mb > 1 && (off%mb != 0 || length%mb != 0) {
		return fmt.Errorf("nbd: write [%d,+%d) not aligned to block size %d: %w", off, length, mb, syscall.EINVAL)
	}
	return nil
}

// Flush asks the server to persist completed writes (NBD_CMD_FLUSH).
func (c *Client) Flush(ctx context.Context) error {
	if c.info.Flags&FlagSendFlush == 0 {
		return fmt.Errorf("nbd: server does not support flush: %w", errors.ErrUnsupported)
	}
	return c.simple(ctx, request{typ: cmdFlush})
}

// Trim tells the server that [off, off+length) is no longer needed.
func (c *Client) Trim(ctx context.Context, off, length int64) error {
	if c.info.Flags&FlagSendTrim == 0 {
		return fmt.Errorf("nbd: server does not support trim: %w", errors.ErrUnsupported)
	}
	return c.ranged(ctx, cmdTrim, 0, off, length)
}

// WriteZeroes writes zeros to [off, off+length) (NBD_CMD_WRITE_ZEROES),
// letting the server punch holes.
func (c *Client) WriteZeroes(ctx context.Context, off, length int64) error {
	if c.info.Flags&FlagSendWriteZeroes == 0 {
		return fmt.Errorf("nbd: server does not support write zeroes: %w", errors.ErrUnsupported)
	}
	return c.ranged(ctx, cmdWriteZeroes, 0, off, length)
}

// ranged sends TRIM or WRITE_ZEROES in pieces of at most 1 GiB.
func (c *Client) ranged(ctx context.Context, cmd, flags uint16, off, length int64) error {
	if err := c.checkWrite(off, length); err != nil {
		return err
	}
	var calls []*call
	var first error
	for done := int64(0); done < length; {
		n := min(length-done, maxZeroTrimLen)
		cl, err := c.start(ctx, request{typ: cmd, flags: flags, offset: uint64(off + done), length: uint32(n)}, nil, nil)
		if err != nil {
			first = err
			break
		}
		calls = append(calls, cl)
		done += n
	}
	if err := c.waitAll(ctx, calls, first); err != nil {
		return fmt.Errorf("nbd: %s [%d,+%d): %w", cmdName(cmd), off, length, err)
	}
	return nil
}

// simple sends one request without payload and waits for its reply.
func (c *Client) simple(ctx context.Context, req request) error {
	cl, err := c.start(ctx, req, nil, nil)
	if err == nil {
		err = c.wait(ctx, cl)
	}
	if err != nil {
		return fmt.Errorf("nbd: %s: %w", cmdName(req.typ), err)
	}
	return nil
}
