package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Client is a QMP connection. It is safe for concurrent use.
type Client struct {
	conn       net.Conn
	greeting   Greeting
	writeMu    sync.Mutex // one request on the wire at a time
	readerDone chan struct{}
	done       chan struct{} // closed when the connection ends

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan reply
	subs    map[*Subscription]struct{}
	err     error // why the connection ended; set once, with done
}

type reply struct {
	ret json.RawMessage
	err *Error
}

// Greeting is what QEMU announces when a client connects.
type Greeting struct {
	Version      Version
	Capabilities []string
}

// Version is a QEMU version, e.g. 7.2.22 with package "Debian 1:7.2+dfsg-7".
type Version struct {
	Major, Minor, Micro int
	Package             string
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Micro) }

type greetingBody struct {
	Version struct {
		QEMU struct {
			Major int `json:"major"`
			Minor int `json:"minor"`
			Micro int `json:"micro"`
		} `json:"qemu"`
		Package string `json:"package"`
	} `json:"version"`
	Capabilities []string `json:"capabilities"`
}

// Dial connects to a QMP socket ("unix:///abs/qmp.sock", a plain socket
// path, or "tcp://host:port"), reads the greeting and leaves capability
// negotiation mode. A QEMU monitor serves one client at a time: while
// another client is connected, Dial waits for the greeting until ctx ends.
func Dial(ctx context.Context, addr string) (*Client, error) {
	conn, err := dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	return New(ctx, conn)
}

// New runs the QMP handshake on an established connection and returns a
// client that owns it (on error, New closes conn).
func New(ctx context.Context, conn net.Conn) (*Client, error) {
	c := newClient(conn)
	br := bufio.NewReaderSize(conn, 64<<10)
	if err := c.readGreeting(ctx, br); err != nil {
		conn.Close()
		return nil, err
	}
	go c.readLoop(br)
	if err := c.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func newClient(conn net.Conn) *Client {
	return &Client{
		conn:       conn,
		readerDone: make(chan struct{}),
		done:       make(chan struct{}),
		pending:    make(map[uint64]chan reply),
		subs:       make(map[*Subscription]struct{}),
	}
}

func (c *Client) readGreeting(ctx context.Context, br *bufio.Reader) error {
	var b []byte
	err := withContext(ctx, c.conn.SetReadDeadline, func() (err error) {
		b, err = readMessage(br, MaxMessageSize)
		return err
	})
	if err != nil {
		return fmt.Errorf("qmp: reading greeting: %w", err)
	}
	m, err := decodeMessage(b)
	if err != nil {
		return fmt.Errorf("qmp: reading greeting: %w", err)
	}
	if m.QMP == nil {
		return fmt.Errorf("%w: expected a greeting, got %.200s", ErrProtocol, b)
	}
	v := m.QMP.Version
	c.greeting = Greeting{
		Version:      Version{v.QEMU.Major, v.QEMU.Minor, v.QEMU.Micro, v.Package},
		Capabilities: m.QMP.Capabilities,
	}
	return nil
}

// Greeting returns what QEMU announced on connect.
func (c *Client) Greeting() Greeting { return c.greeting }

// Done is closed when the connection has ended (Close, or lost).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is up.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection. Pending and later calls fail with ErrClosed.
func (c *Client) Close() error {
	c.fail(ErrClosed)
	err := c.conn.Close()
	<-c.readerDone
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// fail ends the connection state with err; only the first call counts.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
	for s := range c.subs {
		s.end(err)
	}
}
