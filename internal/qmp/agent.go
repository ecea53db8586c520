package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
)

// Agent is a connection to a QEMU guest agent (qemu-ga) through the host end
// of its virtio-serial port, e.g. a chardev socket
// "-chardev socket,path=qga.sock,server=on,wait=off,id=qga0 -device
// virtio-serial -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0".
//
// The protocol has no greeting and no request ids: commands run one at a
// time. Before the first command and after any failed exchange (timeout,
// cancel) the Agent resynchronises with guest-sync-delimited, discarding
// stale replies. Without an agent running in the guest, every call ends with
// the ctx error. Agent is safe for concurrent use (calls are serialised).
type Agent struct {
	conn   net.Conn
	closed atomic.Bool

	mu     sync.Mutex // one exchange at a time; guards the fields below
	br     *bufio.Reader
	synced bool
}

// DialAgent connects to the guest agent socket (a path or "unix://PATH")
// and synchronises with the agent; the ctx deadline bounds the wait for it.
func DialAgent(ctx context.Context, path string) (*Agent, error) {
	conn, err := dial(ctx, path)
	if err != nil {
		return nil, err
	}
	return NewAgent(ctx, conn)
}

// NewAgent synchronises with the agent on conn and returns an Agent that
// owns conn (on error, NewAgent closes it).
func NewAgent(ctx context.Context, conn net.Conn) (*Agent, error) {
	a := &Agent{conn: conn, br: bufio.NewReaderSize(conn, 64<<10)}
	a.mu.Lock()
	err := a.syncLocked(ctx)
	a.mu.Unlock()
	if err != nil {
		conn.Close()
		return nil, err
	}
	return a, nil
}

// Close closes the connection, interrupting a call in progress.
func (a *Agent) Close() error {
	if a.closed.Swap(true) {
		return nil
	}
	return a.conn.Close()
}

// Execute sends a guest agent command and decodes its "return" into result
// (nil to discard it); error replies are *Error. Commands that never reply
// (guest-shutdown, guest-suspend-*) end with the ctx error.
func (a *Agent) Execute(ctx context.Context, command string, args, result any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed.Load() {
		return fmt.Errorf("qga %s: %w", command, ErrClosed)
	}
	if !a.synced {
		if err := a.syncLocked(ctx); err != nil {
			return a.closedErr(command, err)
		}
	}
	ret, err := a.roundTrip(ctx, command, args)
	if err != nil {
		err = a.closedErr(command, err)
		var qerr *Error
		if !errors.As(err, &qerr) {
			a.synced = false // a late reply may still come: resync next time
		}
		return err
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(ret, result); err != nil {
		return fmt.Errorf("qga %s: decoding reply: %w", command, err)
	}
	return nil
}

// closedErr reports ErrClosed for a call that failed because Close ran.
func (a *Agent) closedErr(command string, err error) error {
	if a.closed.Load() {
		return fmt.Errorf("qga %s: %w", command, ErrClosed)
	}
	return err
}

// roundTrip writes one request and reads its reply. a.mu is held.
func (a *Agent) roundTrip(ctx context.Context, command string, args any) (json.RawMessage, error) {
	req, err := encodeRequest(command, args, 0)
	if err != nil {
		return nil, err
	}
	var m message
	err = a.withContext(ctx, func() error {
		if _, err := a.conn.Write(req); err != nil {
			return err
		}
		return a.readReply(&m)
	})
	if err != nil {
		return nil, fmt.Errorf("qga %s: %w", command, err)
	}
	if m.Error != nil {
		e := *m.Error
		e.Command = command
		return nil, &e
	}
	return m.Return, nil
}

// readReply reads messages until a reply (the agent sends no events, but
// skipping anything else is harmless).
func (a *Agent) readReply(m *message) error {
	for {
		b, err := readMessage(a.br, MaxMessageSize)
		if err != nil {
			return err
		}
		if *m, err = decodeMessage(b); err != nil {
			return err
		}
		if m.isReply() {
			return nil
		}
	}
}

// syncLocked sends 0xFF (resetting the agent's parser) and
// guest-sync-delimited with a random id, then waits for the reply carrying
// that id. a.mu is held.
func (a *Agent) syncLocked(ctx context.Context) error {
	id := rand.Uint32() | 1 // never 0
	req, err := encodeRequest("guest-sync-delimited", map[string]uint32{"id": id}, 0)
	if err != nil {
		return err
	}
	err = a.withContext(ctx, func() error {
		if _, err := a.conn.Write(append([]byte{sentinel}, req...)); err != nil {
			return err
		}
		return awaitSync(a.br, id)
	})
	if err != nil {
		return fmt.Errorf("qga: guest-sync-delimited (is the guest agent running?): %w", err)
	}
	a.synced = true
	return nil
}

// awaitSync discards input up to a 0xFF sentinel and reads the reply after
// it, until that reply returns id. Replies to earlier syncs (other ids) and
// any stale data are skipped; a malformed reply after a sentinel is skipped
// too, as the next sentinel resynchronises the stream.
func awaitSync(br *bufio.Reader, id uint32) error {
	for {
		if err := skipToSentinel(br); err != nil {
			return err
		}
		b, err := readMessage(br, MaxMessageSize)
		if errors.Is(err, ErrProtocol) || errors.Is(err, ErrMessageTooLarge) {
			continue
		} else if err != nil {
			return err
		}
		m, err := decodeMessage(b)
		if err != nil {
			continue
		}
		if m.Error != nil {
			return m.Error
		}
		var got uint32
		if json.Unmarshal(m.Return, &got) == nil && got == id {
			return nil
		}
	}
}

func skipToSentinel(br *bufio.Reader) error {
	for {
		b, err := br.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if b == sentinel {
			return nil
		}
	}
}

// withContext runs op with ctx bounding reads and writes on the connection.
func (a *Agent) withContext(ctx context.Context, op func() error) error {
	return withContext(ctx, a.conn.SetDeadline, op)
}
