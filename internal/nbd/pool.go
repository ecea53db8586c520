package nbd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// MultiConn spreads reads of one export over several connections. It is
// safe for concurrent use.
type MultiConn struct {
	clients []*Client
	next    atomic.Uint64
}

// DialMulti opens up to n connections to rawURL. Extra connections are only
// opened when the server advertises NBD_FLAG_CAN_MULTI_CONN or the export is
// read-only; otherwise the pool holds a single connection.
func DialMulti(ctx context.Context, rawURL string, opts ClientOptions, n int) (*MultiConn, error) {
	first, err := Dial(ctx, rawURL, opts)
	if err != nil {
		return nil, err
	}
	m := &MultiConn{clients: []*Client{first}}
	if !first.info.CanMultiConn() && !first.info.ReadOnly() {
		return m, nil
	}
	// The other connections handshake in parallel: on TCP each handshake
	// can take tens of milliseconds of round trips and delayed ACKs.
	extra := make([]*Client, n-1)
	errs := make([]error, n-1)
	var wg sync.WaitGroup
	for i := range extra {
		wg.Add(1)
		go func() {
			defer wg.Done()
			extra[i], errs[i] = Dial(ctx, rawURL, opts)
		}()
	}
	wg.Wait()
	for i, c := range extra {
		if c != nil {
			m.clients = append(m.clients, c)
		}
		if errs[i] != nil && err == nil {
			err = fmt.Errorf("nbd: connection %d of %d: %w", i+2, n, errs[i])
		}
	}
	if err != nil {
		_ = m.Close()
		return nil, err
	}
	return m, nil
}

// Clients returns the pool's connections; the first one is the primary.
func (m *MultiConn) Clients() []*Client { return append([]*Client(nil), m.clients...) }

// Info returns the export details of the primary connection.
func (m *MultiConn) Info() ExportInfo { return m.clients[0].info }

// Size returns the export size.
func (m *MultiConn) Size() int64 { return m.clients[0].info.Size }

// pick returns the healthy connection with the fewest requests in flight,
// starting the scan at a rotating index to spread ties.
func (m *MultiConn) pick() *Client {
	start := int(m.next.Add(1))
	var best *Client
	for i := range m.clients {
		c := m.clients[(start+i)%len(m.clients)]
		if c.Err() != nil {
			continue
		}
		if best == nil || c.InFlight() < best.InFlight() {
			best = c
		}
	}
	if best == nil {
		return m.clients[0]
	}
	return best
}

// ReadAt implements io.ReaderAt over the least busy connection.
func (m *MultiConn) ReadAt(p []byte, off int64) (int, error) {
	return m.pick().ReadAt(p, off)
}

// ReadAtContext reads over the least busy connection.
func (m *MultiConn) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	return m.pick().ReadAtContext(ctx, p, off)
}

// BlockStatus queries the primary connection.
func (m *MultiConn) BlockStatus(ctx context.Context, contextName string, off, length int64) ([]Extent, error) {
	return m.clients[0].BlockStatus(ctx, contextName, off, length)
}

// Close closes every connection.
func (m *MultiConn) Close() error {
	var errs []error
	for _, c := range m.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
