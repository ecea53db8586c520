package nbd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ClientOptions configure Dial and NewClientConn.
type ClientOptions struct {
	// TLSConfig is used for nbds:// URLs (NBD_OPT_STARTTLS). For Dial a nil
	// config means the system roots and the URL host as server name. For
	// NewClientConn a non-nil config turns TLS on.
	TLSConfig *tls.Config
	// MetaContexts are requested with NBD_OPT_SET_META_CONTEXT, e.g.
	// "base:allocation" or "qemu:dirty-bitmap:bm0". Contexts the server
	// does not grant are simply absent from Client.MetaContexts.
	MetaContexts []string
	// DisableStructuredReplies skips NBD_OPT_STRUCTURED_REPLY (and with it
	// meta contexts and block status).
	DisableStructuredReplies bool
	// MaxInFlight bounds the requests pipelined on the connection
	// (default 16).
	MaxInFlight int
	// RequestTimeout bounds calls without a context (ReadAt, WriteAt,
	// Close); zero means no timeout.
	RequestTimeout time.Duration
	// Dial, when set, opens the transport instead of a direct connection
	// to the URL's address: e.g. a unix socket on another host reached
	// through an SSH tunnel. It gets the URL's network and address.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)

	forceExportName bool // tests: skip NBD_OPT_GO
	manualReader    bool // tests: the caller starts readLoop
}

// ExportInfo describes the export a client is connected to.
type ExportInfo struct {
	Name               string
	Description        string
	Size               int64
	Flags              TransmissionFlags
	MinBlockSize       uint32
	PreferredBlockSize uint32
	MaxBlockSize       uint32
}

// ReadOnly reports whether the server refuses writes.
func (i ExportInfo) ReadOnly() bool { return i.Flags&FlagReadOnly != 0 }

// CanMultiConn reports whether several connections see one consistent export.
func (i ExportInfo) CanMultiConn() bool { return i.Flags&FlagCanMultiConn != 0 }

func (i ExportInfo) withDefaults() ExportInfo {
	if i.MinBlockSize == 0 {
		i.MinBlockSize, i.PreferredBlockSize, i.MaxBlockSize = 1, defaultPreferredBlock, MaxRequestSize
	}
	return i
}

func (i ExportInfo) checkBlockSizes() error {
	minB, maxB := i.MinBlockSize, i.MaxBlockSize
	if minB == 0 || minB > 64<<10 || minB&(minB-1) != 0 {
		return protoErrorf("bad minimum block size %d", minB)
	}
	if maxB < minB || (maxB != 1<<32-1 && maxB%minB != 0) {
		return protoErrorf("bad maximum block size %d (minimum %d)", maxB, minB)
	}
	return nil
}

// maxRequest is the largest READ/WRITE length to send.
func (i ExportInfo) maxRequest() int {
	m := min(int64(i.MaxBlockSize), MaxRequestSize)
	m -= m % int64(i.MinBlockSize)
	return int(max(m, int64(i.MinBlockSize)))
}

// Client is a connection to one NBD export. Its methods are safe for
// concurrent use; requests are pipelined on the one connection.
type Client struct {
	raw        net.Conn
	conn       net.Conn
	r          *bufio.Reader
	info       ExportInfo
	structured bool
	contexts   map[string]uint32
	maxReq     int
	opts       ClientOptions

	wlock    chan struct{} // send lock (capacity 1)
	slots    chan struct{}
	inflight atomic.Int64

	mu      sync.Mutex
	pending map[uint64]*call
	handle  uint64
	err     error

	readerDone chan struct{}
	closeOnce  sync.Once
}

// Dial connects to an NBD URL (see URL) and enters the transmission phase.
func Dial(ctx context.Context, rawURL string, opts ClientOptions) (*Client, error) {
	u, conn, err := dialURL(ctx, rawURL, &opts)
	if err != nil {
		return nil, err
	}
	c, err := NewClientConn(ctx, conn, u.Export, opts)
	if err != nil {
		return nil, fmt.Errorf("nbd: connect %s: %w", rawURL, err)
	}
	return c, nil
}

// dialURL parses the URL, opens the transport and fixes up opts.TLSConfig.
func dialURL(ctx context.Context, rawURL string, opts *ClientOptions) (URL, net.Conn, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return URL{}, nil, err
	}
	userCfg := opts.TLSConfig
	opts.TLSConfig = nil
	if u.TLS {
		cfg, err := clientTLSConfig(userCfg, u)
		if err != nil {
			return URL{}, nil, err
		}
		opts.TLSConfig = cfg
	}
	dial := opts.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	conn, err := dial(ctx, u.Network, u.Address)
	if err != nil {
		return URL{}, nil, fmt.Errorf("nbd: dial %s: %w", rawURL, err)
	}
	// Large reads arrive faster with a deep socket buffer: fewer wakeups
	// and read calls per MiB. Best effort; the kernel may cap it.
	if rb, ok := conn.(interface{ SetReadBuffer(int) error }); ok {
		_ = rb.SetReadBuffer(socketBuffer)
	}
	return u, withQuickAck(conn), nil
}

// socketBuffer is the receive buffer asked for on client connections.
const socketBuffer = 4 << 20

// NewClientConn runs the handshake for export on an established
// connection and returns a client in the transmission phase. The client
// owns conn from then on, also on error.
func NewClientConn(ctx context.Context, conn net.Conn, export string, opts ClientOptions) (*Client, error) {
	var c *Client
	err := withDeadline(ctx, conn, func() error {
		var err error
		c, err = negotiate(ctx, conn, export, opts)
		return err
	})
	if err != nil {
		_ = conn.Close()
		return nil, err
	}
	if !opts.manualReader {
		go c.readLoop()
	}
	return c, nil
}

func negotiate(ctx context.Context, conn net.Conn, export string, opts ClientOptions) (*Client, error) {
	h, err := startClientHandshake(conn)
	if err != nil {
		return nil, err
	}
	if opts.TLSConfig != nil {
		if err := h.startTLS(ctx, opts.TLSConfig); err != nil {
			return nil, err
		}
	}
	structured := false
	if h.fixed && !opts.DisableStructuredReplies {
		if structured, err = h.structuredReply(); err != nil {
			return nil, err
		}
	}
	var contexts map[string]uint32
	if structured && len(opts.MetaContexts) > 0 {
		contexts, _, err = h.metaContexts(optSetMetaContext, export, opts.MetaContexts)
		var oe *OptionError
		if err != nil && (!errors.As(err, &oe) || oe.Reply == repErrTLSReqd) {
			return nil, err
		}
	}
	info, err := h.goOrExportName(export, opts.forceExportName)
	if err != nil {
		return nil, err
	}
	return newClient(h, info, structured, contexts, opts), nil
}

func newClient(h *clientHandshake, info ExportInfo, structured bool, contexts map[string]uint32, opts ClientOptions) *Client {
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 16
	}
	return &Client{
		raw: h.raw, conn: h.conn, r: h.r, info: info, structured: structured,
		contexts: contexts, maxReq: info.maxRequest(), opts: opts,
		wlock:      make(chan struct{}, 1),
		slots:      make(chan struct{}, opts.MaxInFlight),
		pending:    map[uint64]*call{},
		readerDone: make(chan struct{}),
	}
}

// Info returns the export's size, flags and block size constraints.
func (c *Client) Info() ExportInfo { return c.info }

// Size returns the export size in bytes.
func (c *Client) Size() int64 { return c.info.Size }

// StructuredReplies reports whether structured replies were negotiated.
func (c *Client) StructuredReplies() bool { return c.structured }

// MetaContexts returns the negotiated meta contexts (name → context ID).
func (c *Client) MetaContexts() map[string]uint32 { return maps.Clone(c.contexts) }

// MetaContextID returns the ID of a negotiated meta context.
func (c *Client) MetaContextID(name string) (uint32, bool) {
	id, ok := c.contexts[name]
	return id, ok
}

// Err returns the error that broke the connection, or nil while healthy.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// InFlight returns the number of requests awaiting replies.
func (c *Client) InFlight() int { return int(c.inflight.Load()) }

// Close sends NBD_CMD_DISC (when the connection is healthy and no send is
// stuck) and closes the connection. Requests still in flight fail with
// ErrClosed.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		select {
		case c.wlock <- struct{}{}:
			c.disconnect()
			<-c.wlock
		default:
		}
		c.fail(ErrClosed)
		<-c.readerDone
	})
	return nil
}

// disconnect sends NBD_CMD_DISC and the TLS close_notify; wlock is held.
func (c *Client) disconnect() {
	if c.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c.sendLocked(ctx, request{typ: cmdDisc}, nil) != nil {
		return
	}
	if tc, ok := c.conn.(*tls.Conn); ok {
		_ = withDeadlineSetter(ctx, c.raw.SetWriteDeadline, tc.CloseWrite)
	}
}

// opContext returns the context for calls that take none.
func (c *Client) opContext() (context.Context, context.CancelFunc) {
	if c.opts.RequestTimeout > 0 {
		return context.WithTimeout(context.Background(), c.opts.RequestTimeout)
	}
	return context.WithCancel(context.Background())
}
