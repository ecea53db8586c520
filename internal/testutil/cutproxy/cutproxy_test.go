package cutproxy_test

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/cutproxy"
)

// echoServer echoes every connection until the client closes it.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return l.Addr().String()
}

// TestCutConn: a connection is cut once it carried the budget, both ways
// counted; a connection under the budget passes untouched.
func TestCutConn(t *testing.T) {
	p, err := cutproxy.Start("127.0.0.1:0", echoServer(t), cutproxy.ModeConn, 3000)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	msg := bytes.Repeat([]byte("x"), 1000)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo under the budget: %v", err)
	}
	// 2000 bytes carried; 1000 more up reach 3000: the echo is cut
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(c, got); err == nil {
		t.Fatalf("read %d bytes after the budget was spent", n)
	}
	c.Close()
	st := p.Stats()
	if st.Cuts != 1 || st.BytesUp != 2000 || st.BytesDown != 1000 || st.Connections != 1 {
		t.Errorf("stats %+v", st)
	}
	p.Reset()
	if st := p.Stats(); st != (cutproxy.Stats{}) {
		t.Errorf("after Reset: %+v", st)
	}
}

// TestCutLink: the link's budget is spent by all connections together,
// and a cut resets every open one.
func TestCutLink(t *testing.T) {
	p, err := cutproxy.Start("127.0.0.1:0", echoServer(t), cutproxy.ModeLink, 5000)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var cs []net.Conn
	msg := bytes.Repeat([]byte("y"), 1000)
	got := make([]byte, len(msg))
	for range 2 { // 4000 bytes carried
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if _, err := cs[0].Write(msg); err != nil { // 5000: the link drops
		t.Fatal(err)
	}
	for i, c := range cs {
		if n, err := io.ReadFull(c, got); err == nil {
			t.Errorf("connection %d read %d bytes after the link dropped", i, n)
		}
	}
	if st := p.Stats(); st.Cuts != 1 || st.BytesUp != 3000 || st.BytesDown != 2000 {
		t.Errorf("stats %+v", st)
	}
	// the link is back with a new budget
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("after the cut: %v", err)
	}
}

// TestJitter: with jitter the link's budgets vary around the mean, within
// half of it either way.
func TestJitter(t *testing.T) {
	p, err := cutproxy.Start("127.0.0.1:0", echoServer(t), cutproxy.ModeLink, 2000)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Jitter(1)
	seen := map[int]bool{}
	for range 8 { // one connection per cut: write until it is cut
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		before := p.Stats().BytesUp + p.Stats().BytesDown
		b := []byte{'z'}
		for {
			if _, err := c.Write(b); err != nil {
				break
			}
			if _, err := io.ReadFull(c, b); err != nil {
				break
			}
		}
		c.Close()
		n := int(p.Stats().BytesUp + p.Stats().BytesDown - before)
		if n < 1000 || n > 3000 {
			t.Errorf("a budget of %d bytes, want 1000 to 3000", n)
		}
		seen[n] = true
	}
	if len(seen) < 4 {
		t.Errorf("budgets %v: want them to vary", seen)
	}
}
