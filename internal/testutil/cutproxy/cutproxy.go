// Package cutproxy is a TCP proxy that drops links: it forwards each
// accepted connection to a target and cuts connections (a TCP reset to
// both ends) after a given number of bytes, both directions together:
// every open connection at once each time the link has carried that many
// bytes (a link that drops, ModeLink), or each connection once it alone
// has carried them (ModeConn). Tests and bench/copy.sh put it between
// Holdfast and an S3 server to measure and check copies over a link that
// keeps dropping.
package cutproxy

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
)

// Stats count the proxy's traffic since it started (or Reset).
type Stats struct {
	Connections int64 `json:"connections"`
	Cuts        int64 `json:"cuts"`
	BytesUp     int64 `json:"bytes_up"`   // client to target
	BytesDown   int64 `json:"bytes_down"` // target to client
}

// Mode says what a cut cuts.
type Mode int

const (
	// ModeLink cuts every open connection each time the link has carried
	// the budget since the last cut.
	ModeLink Mode = iota
	// ModeConn cuts each connection once it has carried the budget.
	ModeConn
)

// Proxy is a running proxy.
type Proxy struct {
	mode                  Mode
	linkLeft              atomic.Int64 // ModeLink: bytes until the next cut
	l                     net.Listener
	target                string
	cutAfter              atomic.Int64
	conns, cuts, up, down atomic.Int64
	wg                    sync.WaitGroup
	mu                    sync.Mutex
	open                  map[net.Conn]struct{}
	closed                bool
	rng                   *rand.Rand // ModeLink with Jitter: draws each budget
}

// Start listens on listen (e.g. 127.0.0.1:0) and forwards to target
// (HOST:PORT), cutting connections after cutAfter bytes (0: never) as mode
// says.
func Start(listen, target string, mode Mode, cutAfter int64) (*Proxy, error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	p := &Proxy{mode: mode, l: l, target: target, open: map[net.Conn]struct{}{}}
	p.cutAfter.Store(cutAfter)
	p.linkLeft.Store(cutAfter)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Jitter makes each of the link's budgets (ModeLink), from now on, a
// uniform draw from [cutAfter/2, 3·cutAfter/2] (seeded: runs repeat), so
// that cuts do not fall in step with the traffic (a budget that is a
// multiple of the transfer unit cuts every transfer at the same place).
func (p *Proxy) Jitter(seed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p.linkLeft.Store(p.budgetLocked())
}

// budgetLocked is the next link budget.
func (p *Proxy) budgetLocked() int64 {
	n := p.cutAfter.Load()
	if p.rng == nil || n < 2 {
		return n
	}
	return n/2 + p.rng.Int64N(n+1)
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// SetCutAfter changes the budget: of the link from now on, of connections
// accepted from now on.
func (p *Proxy) SetCutAfter(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutAfter.Store(n)
	p.linkLeft.Store(p.budgetLocked())
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	return Stats{Connections: p.conns.Load(), Cuts: p.cuts.Load(), BytesUp: p.up.Load(), BytesDown: p.down.Load()}
}

// Reset zeroes the counts.
func (p *Proxy) Reset() {
	p.conns.Store(0)
	p.cuts.Store(0)
	p.up.Store(0)
	p.down.Store(0)
}

// Close stops listening, cuts every open connection and waits for the
// forwarding goroutines.
func (p *Proxy) Close() error {
	err := p.l.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.open {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		p.wg.Add(1)
		go p.serve(c)
	}
}

// track registers c so Close can cut it; false when closing.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range cs {
		p.open[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.open, c)
	}
}

// link is one proxied connection and its remaining byte budget.
type link struct {
	p         *Proxy
	a, b      net.Conn
	budget    atomic.Int64 // < 0: unlimited
	closeOnce sync.Once
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	t, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, t) {
		c.Close()
		t.Close()
		return
	}
	defer p.untrack(c, t)
	k := &link{p: p, a: c, b: t}
	if n := p.cutAfter.Load(); n > 0 && p.mode == ModeConn {
		k.budget.Store(n)
	} else {
		k.budget.Store(-1)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); k.pipe(t, c, &p.up) }()
	go func() { defer wg.Done(); k.pipe(c, t, &p.down) }()
	wg.Wait()
	k.close(false)
}

// pipe forwards src to dst until either ends or the budget is spent.
func (k *link) pipe(dst, src net.Conn, count *atomic.Int64) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			allowed, cut := k.take(int64(n))
			if !cut && k.p.mode == ModeLink {
				allowed, cut = k.p.takeLink(allowed)
			}
			if allowed > 0 {
				// Counted before it is written, so that whoever sees the
				// bytes arrive also sees them counted; a short write
				// takes back what did not pass.
				count.Add(allowed)
				w, werr := dst.Write(buf[:allowed])
				count.Add(int64(w) - allowed)
				if werr != nil {
					k.close(false)
					return
				}
			}
			if cut && k.p.mode == ModeLink {
				k.p.cutAll()
				return
			}
			if cut {
				k.close(true)
				return
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite() // half-close: the other direction may go on
					return
				}
			}
			k.close(false)
			return
		}
	}
}

// take spends up to n bytes of the connection's budget: how many may
// pass, and whether the connection is to be cut after them.
func (k *link) take(n int64) (int64, bool) { return spend(&k.budget, n) }

// takeLink spends from the link's budget (ModeLink); a cut refills it.
func (p *Proxy) takeLink(n int64) (int64, bool) {
	if p.cutAfter.Load() <= 0 {
		return n, false
	}
	return spend(&p.linkLeft, n)
}

// cutAll resets every open connection and refills the link's budget: the
// link dropped.
func (p *Proxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.linkLeft.Load() > 0 {
		return // another connection's cut got here first
	}
	p.cuts.Add(1)
	for c := range p.open {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.Close()
	}
	p.linkLeft.Store(p.budgetLocked())
}

// spend takes up to n bytes from budget (< 0: unlimited): how many may
// pass, and whether it ran out with them.
func spend(budget *atomic.Int64, n int64) (int64, bool) {
	for {
		b := budget.Load()
		if b < 0 {
			return n, false
		}
		if b > n {
			if budget.CompareAndSwap(b, b-n) {
				return n, false
			}
			continue
		}
		if budget.CompareAndSwap(b, 0) {
			return b, true
		}
	}
}

// close ends both connections; a cut resets them (SO_LINGER 0), as a
// dropped link looks to both ends.
func (k *link) close(cut bool) {
	k.closeOnce.Do(func() {
		if cut {
			k.p.cuts.Add(1)
			for _, c := range []net.Conn{k.a, k.b} {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
			}
		}
		k.a.Close()
		k.b.Close()
	})
}
