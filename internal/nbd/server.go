package nbd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// Export is a named disk image a Server offers.
type Export struct {
	Name        string
	Description string
	Size        int64
	ReaderAt    io.ReaderAt
	// WriterAt receives writes; nil makes the export read-only. If it also
	// implements ZeroWriterAt or TrimmerAt those are used for
	// NBD_CMD_WRITE_ZEROES and NBD_CMD_TRIM.
	WriterAt io.WriterAt
	// Allocation, if set, reports holes and zeros in [off, off+length) for
	// base:allocation and lets READ send zero ranges as OFFSET_HOLE chunks.
	// Gaps between returned extents count as allocated data.
	Allocation func(ctx context.Context, off, length int64) ([]Extent, error)
	// Flush, if set, handles NBD_CMD_FLUSH (and FUA writes). Without it a
	// WriterAt with a Sync() error method (such as *os.File) is synced.
	Flush func() error
}

// ZeroWriterAt is an optional WriterAt extension for NBD_CMD_WRITE_ZEROES.
type ZeroWriterAt interface {
	WriteZeroesAt(off, length int64) error
}

// TrimmerAt is an optional WriterAt extension for NBD_CMD_TRIM. Without it
// trims succeed without effect, which the protocol allows.
type TrimmerAt interface {
	TrimAt(off, length int64) error
}

// ServerOptions configure a Server.
type ServerOptions struct {
	// TLSConfig enables NBD_OPT_STARTTLS.
	TLSConfig *tls.Config
	// RequireTLS refuses every option but STARTTLS and ABORT before TLS.
	RequireTLS bool
	// Allow, if set, is asked for each accepted connection; false closes it.
	Allow func(net.Addr) bool
	// MaxInFlight bounds concurrently served requests per connection
	// (default 16).
	MaxInFlight int
	// MaxBufferedBytes bounds request and reply buffers per connection
	// (default 64 MiB; at least MaxRequestSize, 32 MiB).
	MaxBufferedBytes int64
	// MaxTotalBufferedBytes bounds them over all connections (default
	// 256 MiB; at least MaxBufferedBytes). A request waits for its bytes
	// before its payload is read or its reply allocated.
	MaxTotalBufferedBytes int64
	// ReplyTimeout bounds the sending of one reply (default 2 min): a
	// client that stops reading replies is disconnected, and the buffers
	// its requests held are freed for the others.
	ReplyTimeout time.Duration
	// HandshakeTimeout bounds the handshake phase (default 30 s).
	HandshakeTimeout time.Duration
	// Logger receives connection errors (default: discarded).
	Logger *slog.Logger
	// Clock stamps when connections opened (Connections; nil: the real
	// clock).
	Clock clock.Clock

	disableGo bool // tests: answer NBD_OPT_GO/INFO with ERR_UNSUP
}

// Server serves exports over NBD (fixed newstyle handshake, structured
// replies, base:allocation block status, optional TLS).
type Server struct {
	opts  ServerOptions
	log   *slog.Logger
	zero  []byte
	buf   *bufferBudget // over all connections
	pools *bufferPools

	mu        sync.Mutex
	exports   map[string]*Export
	order     []string
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	closed    bool
	wg        sync.WaitGroup
}

// NewServer returns a server offering exports.
func NewServer(opts ServerOptions, exports ...Export) (*Server, error) {
	if opts.RequireTLS && opts.TLSConfig == nil {
		return nil, errors.New("nbd: RequireTLS without TLSConfig")
	}
	opts.TLSConfig = serverTLSConfig(opts.TLSConfig)
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 16
	}
	if opts.MaxBufferedBytes <= 0 {
		opts.MaxBufferedBytes = 64 << 20
	}
	opts.MaxBufferedBytes = max(opts.MaxBufferedBytes, MaxRequestSize)
	if opts.MaxTotalBufferedBytes <= 0 {
		opts.MaxTotalBufferedBytes = 256 << 20
	}
	opts.MaxTotalBufferedBytes = max(opts.MaxTotalBufferedBytes, opts.MaxBufferedBytes)
	if opts.ReplyTimeout <= 0 {
		opts.ReplyTimeout = 2 * time.Minute
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts: opts, log: log, zero: make([]byte, 1<<20),
		buf: newBufferBudget(opts.MaxTotalBufferedBytes), pools: &bufferPools{},
		exports: map[string]*Export{}, listeners: map[net.Listener]struct{}{},
		conns: map[*serverConn]struct{}{},
	}
	for _, e := range exports {
		if err := s.AddExport(e); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// AddExport adds or replaces an export. Connections already using an
// export keep the version they opened.
func (s *Server) AddExport(e Export) error {
	switch {
	case len(e.Name) > maxStringLen || !utf8.ValidString(e.Name):
		return fmt.Errorf("nbd: export name %q invalid", e.Name)
	case len(e.Description) > maxStringLen:
		return fmt.Errorf("nbd: export %q: description too long", e.Name)
	case e.Size < 0 || e.ReaderAt == nil:
		return fmt.Errorf("nbd: export %q needs a ReaderAt and a size >= 0", e.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.exports[e.Name]; !ok {
		s.order = append(s.order, e.Name)
	}
	s.exports[e.Name] = &e
	return nil
}

// RemoveExport stops offering an export to new connections.
func (s *Server) RemoveExport(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.exports, name)
	for i, n := range s.order {
		if n == name {
			s.order = append(s.order[:i], s.order[i+1:]...)
			break
		}
	}
}

// lookup finds an export; the empty name selects the only export when
// there is exactly one and none is named "".
func (s *Server) lookup(name string) *Export {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.exports[name]; ok {
		return e
	}
	if name == "" && len(s.order) == 1 {
		return s.exports[s.order[0]]
	}
	return nil
}

func (s *Server) exportList() []*Export {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Export, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, s.exports[n])
	}
	return out
}
