package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
)

// Execute sends a command with its arguments (nil for none; any value that
// encodes to a JSON object) and decodes the reply's "return" value into
// result (nil to discard it). An error reply is returned as *Error. Execute
// returns the ctx error when ctx ends first; a reply that arrives later is
// discarded (the command may still have run).
func (c *Client) Execute(ctx context.Context, command string, args, result any) error {
	ret, err := c.execute(ctx, command, args)
	if err != nil {
		return err
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(ret, result); err != nil {
		return fmt.Errorf("qmp %s: decoding reply: %w", command, err)
	}
	return nil
}

func (c *Client) execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	id, ch, err := c.register()
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	defer c.unregister(id)
	req, err := encodeRequest(command, args, id)
	if err != nil {
		return nil, err
	}
	if err := c.send(ctx, req); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	var r reply
	select {
	case r = <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp %s: %w", command, ctx.Err())
	case <-c.done:
		select {
		case r = <-ch: // the reply arrived just before the connection ended
		default:
			return nil, fmt.Errorf("qmp %s: %w", command, c.Err())
		}
	}
	if r.err != nil {
		e := *r.err
		e.Command = command
		return nil, &e
	}
	return r.ret, nil
}

func (c *Client) register() (uint64, chan reply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, nil, c.err
	}
	c.nextID++
	ch := make(chan reply, 1)
	c.pending[c.nextID] = ch
	return c.nextID, ch, nil
}

func (c *Client) unregister(id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, id)
}

// send writes one request. A write cut short by ctx leaves a partial request
// on the wire, after which the stream cannot be trusted: the connection is
// then closed.
func (c *Client) send(ctx context.Context, req []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	var n int
	err := withContext(ctx, c.conn.SetWriteDeadline, func() (err error) {
		n, err = c.conn.Write(req)
		return err
	})
	if err != nil && n > 0 {
		c.fail(fmt.Errorf("%w: request cut short: %w", ErrDisconnected, err))
		c.conn.Close()
	}
	return err
}

// readLoop reads and dispatches messages until the connection ends.
func (c *Client) readLoop(br *bufio.Reader) {
	defer close(c.readerDone)
	for {
		b, err := readMessage(br, MaxMessageSize)
		if err == nil {
			var m message
			if m, err = decodeMessage(b); err == nil {
				c.dispatch(&m)
				continue
			}
		}
		c.fail(fmt.Errorf("%w: %w", ErrDisconnected, err))
		c.conn.Close()
		return
	}
}

// dispatch hands a reply to its caller and an event to the subscriptions.
// A reply without a usable id (QEMU omits it when it could not parse the
// request) goes to the only pending caller if there is exactly one.
func (c *Client) dispatch(m *message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case m.Event != "":
		ev := Event{Name: m.Event, Data: m.Data, Time: m.Timestamp.time()}
		for s := range c.subs {
			s.push(ev)
		}
	case m.isReply():
		ch := c.replyChannel(m)
		if ch != nil {
			ch <- reply{ret: m.Return, err: m.Error}
		}
	}
}

// replyChannel finds and removes the caller waiting for m. c.mu is held.
func (c *Client) replyChannel(m *message) chan reply {
	id, ok := m.id()
	if !ok && len(c.pending) == 1 {
		for only := range c.pending {
			id, ok = only, true
		}
	}
	ch := c.pending[id]
	if !ok || ch == nil {
		return nil
	}
	delete(c.pending, id)
	return ch
}
