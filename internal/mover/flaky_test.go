package mover

import (
	"bytes"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/memdisk"
)

// flakyProxy forwards TCP connections to a target and cuts each one after
// cutAfter bytes (both directions together; 0: never). It counts the bytes
// it forwarded in each direction.
type flakyProxy struct {
	ln       net.Listener
	target   string
	cutAfter int64
	up, down atomic.Int64 // client → server, server → client
	conns    atomic.Int64
	cuts     atomic.Int64

	mu   sync.Mutex
	open map[net.Conn]struct{}
	wg   sync.WaitGroup
}

func newFlakyProxy(t *testing.T, target string, cutAfter int64) *flakyProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{ln: ln, target: target, cutAfter: cutAfter, open: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *flakyProxy) url() string { return "https://" + p.ln.Addr().String() }

func (p *flakyProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *flakyProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	for _, c := range cs {
		p.open[c] = struct{}{}
	}
	p.mu.Unlock()
}

func (p *flakyProxy) handle(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.conns.Add(1)
	p.track(client, server)
	budget := &atomic.Int64{}
	budget.Store(math.MaxInt64)
	if p.cutAfter > 0 {
		budget.Store(p.cutAfter)
	}
	var once sync.Once
	cut := func() { once.Do(func() { client.Close(); server.Close() }) }
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(server, client, budget, &p.up, cut) }()
	go func() { defer wg.Done(); p.pipe(client, server, budget, &p.down, cut) }()
	wg.Wait()
}

// pipe copies src to dst until either fails or the budget runs out.
func (p *flakyProxy) pipe(dst, src net.Conn, budget, count *atomic.Int64, cut func()) {
	defer cut()
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			left := budget.Add(-int64(n))
			allowed := int64(n)
			if left < 0 {
				allowed = max(0, int64(n)+left)
			}
			w, _ := dst.Write(buf[:allowed])
			count.Add(int64(w))
			if left <= 0 {
				p.cuts.Add(1)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *flakyProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.open {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestFlakyConnection backs up through a proxy that cuts every connection
// after 8 MiB: the session survives, the backup completes, the restore is
// identical, and less than 10 % of the data is sent twice.
func TestFlakyConnection(t *testing.T) {
	const size = 32 << 20
	d := memdisk.Random(size, 3)

	// Baseline: the same backup through a proxy that never cuts.
	clean := newEnv(t, nil, ServerOptions{})
	cp := newFlakyProxy(t, clean.ts.Listener.Addr().String(), 0)
	backup(t, clean.dial(t, cp.url(), nil), d, 2)

	e := newEnv(t, nil, ServerOptions{})
	fp := newFlakyProxy(t, e.ts.Listener.Addr().String(), 8<<20)
	c := e.dial(t, fp.url(), nil)
	m := backup(t, c, d, 2)
	resent := fp.up.Load() - cp.up.Load()
	t.Logf("baseline %d bytes up, flaky %d bytes up over %d connections: resent %d (%.1f %% of %d); %d retries",
		cp.up.Load(), fp.up.Load(), fp.conns.Load(), resent, 100*float64(resent)/size, size, c.Stats().Retries)
	if fp.cuts.Load() < 3 {
		t.Fatalf("only %d cuts: the test did not exercise reconnects", fp.cuts.Load())
	}
	if e.srv.started.Load() != 1 {
		t.Errorf("%d sessions started, want 1 (continued across reconnects)", e.srv.started.Load())
	}
	if resent > size/10 {
		t.Errorf("resent %d bytes, more than 10 %% of %d", resent, size)
	}
	if got := restore(t, c, m); !bytes.Equal(got, d.Data) {
		t.Fatal("restore through the flaky connection differs")
	}
	t.Logf("restore: %d bytes down, %d connections in all", fp.down.Load(), fp.conns.Load())
}
