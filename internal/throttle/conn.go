package throttle

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// pacer tracks the bucket that applies to one wrapped stream and
// re-evaluates it every s.recheck of clock time.
type pacer struct {
	s        *Shaper
	src, dst netip.Addr
	ctx      context.Context

	mu     sync.Mutex
	bucket *Bucket
	rule   string
	next   time.Time // next re-evaluation
}

func newPacer(ctx context.Context, s *Shaper, src, dst netip.Addr) *pacer {
	return &pacer{s: s, src: src, dst: dst, ctx: ctx}
}

// current returns the bucket to use now (nil = unlimited).
func (p *pacer) current() *Bucket {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.s.clock.Now()
	if p.next.IsZero() || !now.Before(p.next) {
		p.bucket, p.rule = p.s.Lookup(p.src, p.dst)
		p.next = now.Add(p.s.recheck)
	}
	return p.bucket
}

// Rule returns the name of the rule applied at the last evaluation.
func (p *pacer) Rule() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rule
}

// read reads at most one burst from r and then waits for the bytes read.
func (p *pacer) read(r io.Reader, b []byte) (int, error) {
	bk := p.current()
	n, err := r.Read(b[:bk.Chunk(len(b))])
	if n > 0 && bk != nil {
		if werr := bk.WaitN(p.ctx, n); werr != nil && err == nil {
			err = werr
		}
	}
	return n, err
}

// write writes b in burst-sized pieces, waiting before each.
func (p *pacer) write(w io.Writer, b []byte) (int, error) {
	done := 0
	for done < len(b) {
		bk := p.current()
		piece := b[done:][:bk.Chunk(len(b)-done)]
		if bk != nil {
			if err := bk.WaitN(p.ctx, len(piece)); err != nil {
				return done, err
			}
		}
		n, err := w.Write(piece)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Reader paces an io.Reader.
type Reader struct {
	*pacer
	r io.Reader
}

// Writer paces an io.Writer.
type Writer struct {
	*pacer
	w io.Writer
}

// Reader wraps r, carrying traffic from src to dst; waits end with ctx.
func (s *Shaper) Reader(ctx context.Context, r io.Reader, src, dst netip.Addr) *Reader {
	return &Reader{pacer: newPacer(ctx, s, src, dst), r: r}
}

// Writer wraps w, carrying traffic from src to dst; waits end with ctx.
func (s *Shaper) Writer(ctx context.Context, w io.Writer, src, dst netip.Addr) *Writer {
	return &Writer{pacer: newPacer(ctx, s, src, dst), w: w}
}

func (r *Reader) Read(b []byte) (int, error)  { return r.read(r.r, b) }
func (w *Writer) Write(b []byte) (int, error) { return w.write(w.w, b) }

// Conn is a net.Conn whose reads and writes are paced. Closing it ends
// pending waits.
type Conn struct {
	net.Conn
	*pacer
	cancel context.CancelFunc
}

// Conn wraps c with the connection's local address as source and remote
// address as target (non-IP addresses match only rules without networks).
func (s *Shaper) Conn(c net.Conn) *Conn {
	return s.ConnAddrs(c, addrOf(c.LocalAddr()), addrOf(c.RemoteAddr()))
}

// ConnAddrs wraps c with explicit source and target addresses.
func (s *Shaper) ConnAddrs(c net.Conn, src, dst netip.Addr) *Conn {
	ctx, cancel := context.WithCancel(context.Background())
	return &Conn{Conn: c, pacer: newPacer(ctx, s, src, dst), cancel: cancel}
}

func (c *Conn) Read(b []byte) (int, error)  { return c.read(c.Conn, b) }
func (c *Conn) Write(b []byte) (int, error) { return c.write(c.Conn, b) }

// Close closes the connection and aborts pending waits.
func (c *Conn) Close() error {
	c.cancel()
	return c.Conn.Close()
}

func addrOf(a net.Addr) netip.Addr {
	if a == nil {
		return netip.Addr{}
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().WithZone("")
	}
	return netip.Addr{}
}
