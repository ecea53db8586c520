package nbd

import (
	"sync"
	"testing"
	"time"
)

// gatedDisk fills reads with a byte pattern once its gate opens.
type gatedDisk struct {
	gate chan struct{}
}

func (d *gatedDisk) ReadAt(p []byte, off int64) (int, error) {
	<-d.gate
	for i := range p {
		p[i] = byte((off + int64(i)) >> 12)
	}
	return len(p), nil
}

// TestServerBuffersBounded: many pipelined large reads from concurrent
// connections hold at most MaxBufferedBytes per connection and
// MaxTotalBufferedBytes over the server; the bytes go back when the
// replies are sent.
func TestServerBuffersBounded(t *testing.T) {
	const req = 4 << 20
	for _, tc := range []struct {
		name         string
		conns, reads int // connections, pipelined reads on each
		perConn      int64
		total        int64
		wantHeldPeak int64
	}{
		{"one connection", 1, 16, 32 << 20, 1 << 30, 32 << 20},
		{"server-wide", 4, 4, 32 << 20, 40 << 20, 40 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			disk := &gatedDisk{gate: make(chan struct{})}
			srv, network, addr := serveT(t, false, ServerOptions{MaxInFlight: 16, MaxBufferedBytes: tc.perConn,
				MaxTotalBufferedBytes: tc.total}, Export{Name: "d", Size: 1 << 30, ReaderAt: disk})
			var wg sync.WaitGroup
			errs := make(chan error, tc.conns*tc.reads)
			for c := range tc.conns {
				cl := dialT(t, nbdURL(network, addr, "d"), ClientOptions{MaxInFlight: 16})
				for r := range tc.reads {
					wg.Add(1)
					go func() {
						defer wg.Done()
						off := int64(c*tc.reads+r) * req
						buf := make([]byte, req)
						if _, err := cl.ReadAt(buf, off); err != nil {
							errs <- err
							return
						}
						for i, b := range buf {
							if b != byte((off+int64(i))>>12) {
								t.Errorf("read at %d: wrong byte at %d", off, i)
								return
							}
						}
					}()
				}
			}
			// Every reply is held back: the server takes requests until its
			// budget is exhausted, then waits.
			deadline := time.Now().Add(time.Minute)
			for srv.Stats().BufferedBytes < tc.wantHeldPeak {
				if time.Now().After(deadline) {
					t.Fatalf("buffered %d bytes, want it to reach %d", srv.Stats().BufferedBytes, tc.wantHeldPeak)
				}
				time.Sleep(5 * time.Millisecond)
			}
			close(disk.gate)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			st := srv.Stats()
			if st.PeakBufferedBytes != tc.wantHeldPeak {
				t.Fatalf("peak buffered %d bytes, want %d (the bound)", st.PeakBufferedBytes, tc.wantHeldPeak)
			}
			if st.BufferedBytes != 0 {
				t.Fatalf("%d bytes still buffered after every reply was sent", st.BufferedBytes)
			}
		})
	}
}

func TestBufferPools(t *testing.T) {
	var p bufferPools
	for _, n := range []int{0, 1, 4096, 64 << 10, 64<<10 + 1, 3 << 20, MaxRequestSize} {
		b := p.get(n)
		if len(b) != n || cap(b)&(cap(b)-1) != 0 {
			t.Fatalf("get(%d): len %d cap %d", n, len(b), cap(b))
		}
		p.put(b)
	}
	if b := p.get(MaxRequestSize + 1); len(b) != MaxRequestSize+1 {
		t.Fatal("oversized get")
	}
	if poolIndex(MaxRequestSize) >= len(p) || poolIndex(MaxRequestSize+1) != -1 {
		t.Fatalf("poolIndex(%d) = %d", MaxRequestSize, poolIndex(MaxRequestSize))
	}
}
