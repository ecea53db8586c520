package throttle

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func mustRules(t *testing.T, text string) Rules {
	t.Helper()
	rs, err := ParseRules(text, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

var (
	addrA = netip.MustParseAddr("10.0.0.1")
	addrB = netip.MustParseAddr("192.168.50.1")
)

// TestWriterWindowChangesMidTransfer writes through a Writer while a time
// window opens or closes; the wrapper must notice within a second.
func TestWriterWindowChangesMidTransfer(t *testing.T) {
	const MiB = 1 << 20
	tests := []struct {
		name     string
		rules    string
		start    string
		n        int
		min, max time.Duration
	}{
		// 1 s paced at 1 MiB/s, then the window closes: the rest is free.
		{"window closes", "day: 1MiB/s 08:00-18:00", "17:59:59", 8 * MiB, time.Second, 1100 * time.Millisecond},
		// 1 s at 4 MiB/s (~4.25 MiB incl. burst), then ~3.75 MiB at 1 MiB/s.
		{"window opens", "always: 4MiB/s\noffice: 1MiB/s 08:00-18:00", "07:59:59", 8 * MiB, 4500 * time.Millisecond, 4900 * time.Millisecond},
		{"no rule applies", "other: 10.9.0.0/16 -> any 1KiB/s", "12:00:00", 8 * MiB, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, _ := time.Parse("2006-01-02 15:04:05", "2026-11-23 "+tt.start)
			clk := newFakeClock(start)
			s := NewShaper(mustRules(t, tt.rules), clk)
			var sink bytes.Buffer
			w := s.Writer(context.Background(), &sink, addrA, addrB)
			for sent := 0; sent < tt.n; sent += 32 << 10 {
				if _, err := w.Write(make([]byte, 32<<10)); err != nil {
					t.Fatal(err)
				}
			}
			if sink.Len() != tt.n {
				t.Fatalf("wrote %d bytes, want %d", sink.Len(), tt.n)
			}
			if got := clk.Now().Sub(start); got < tt.min || got > tt.max {
				t.Errorf("took %v, want [%v, %v]", got, tt.min, tt.max)
			}
		})
	}
}

func TestReaderPaced(t *testing.T) {
	clk := newFakeClock(t0)
	s := NewShaper(mustRules(t, "r: 10.0.0.0/8 -> any 64KiB/s"), clk)
	r := s.Reader(context.Background(), strings.NewReader(strings.Repeat("x", 256<<10)), addrA, addrB)
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != 256<<10 {
		t.Fatalf("copied %d, %v", n, err)
	}
	// Burst 16 KiB, then 240 KiB at 64 KiB/s.
	if got, want := clk.Now().Sub(t0), 3750*time.Millisecond; got < want || got > want+10*time.Millisecond {
		t.Errorf("took %v, want %v", got, want)
	}
	if r.Rule() != "r" {
		t.Errorf("rule %q", r.Rule())
	}
}

func TestShaperSharesBucketPerRule(t *testing.T) {
	s := NewShaper(mustRules(t, "wan: 10.0.0.0/8 -> any 1MiB\nlan: 192.168.0.0/16 -> any 2MiB"), newFakeClock(t0))
	b1, n1 := s.Lookup(addrA, addrB)
	b2, _ := s.Lookup(netip.MustParseAddr("10.9.9.9"), addrA)
	b3, n3 := s.Lookup(addrB, addrA)
	if b1 != b2 || b1 == b3 || n1 != "wan" || n3 != "lan" {
		t.Fatalf("buckets %p %p %p, rules %q %q", b1, b2, b3, n1, n3)
	}
	s.SetRules(mustRules(t, "wan: 10.0.0.0/8 -> any 3MiB"))
	if b1.Rate() != 3<<20 {
		t.Errorf("rate after SetRules = %d", b1.Rate())
	}
	if b, _ := s.Lookup(addrB, addrA); b != nil {
		t.Errorf("lan rule still applies")
	}
}

// TestLoopbackRealRate sends over two real TCP connections sharing a
// 4 MiB/s rule for ~1.5 s and checks the aggregate rate measured at the
// receiver over the steady part (0.3 s .. 1.5 s) is within 10 %.
func TestLoopbackRealRate(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time test")
	}
	const rate = 4 << 20
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skip("no loopback:", err)
	}
	defer ln.Close()
	var received atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					received.Add(int64(n))
					if err != nil {
						return
					}
				}
			})
		}
	})
	s := NewShaper(mustRules(t, "lo: 127.0.0.0/8 -> 127.0.0.0/8 4MiB/s"), nil)
	var conns []*Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		tc := s.Conn(c)
		conns = append(conns, tc)
		wg.Go(func() {
			buf := make([]byte, 32<<10)
			for {
				if _, err := tc.Write(buf); err != nil {
					return
				}
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	n1, t1 := received.Load(), time.Now()
	time.Sleep(1200 * time.Millisecond)
	n2, t2 := received.Load(), time.Now()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	got := float64(n2-n1) / t2.Sub(t1).Seconds()
	t.Logf("aggregate %.3f MiB/s over %v (rule %q)", got/(1<<20), t2.Sub(t1), conns[0].Rule())
	if got < rate*0.9 || got > rate*1.1 {
		t.Errorf("aggregate rate %.0f B/s, want %d ±10%%", got, rate)
	}
}
