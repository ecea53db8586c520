package nbd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"reflect"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestServerClient runs our client against our server in every
// negotiation mode.
func TestServerClient(t *testing.T) {
	cases := []struct {
		name  string
		unix  bool
		sopts ServerOptions
		copts ClientOptions
	}{
		{"tcp-structured", false, ServerOptions{}, ClientOptions{}},
		{"unix-structured", true, ServerOptions{}, ClientOptions{}},
		{"simple-replies", false, ServerOptions{}, ClientOptions{DisableStructuredReplies: true}},
		{"export-name-fallback", true, ServerOptions{disableGo: true}, ClientOptions{}},
		{"export-name-forced", false, ServerOptions{}, ClientOptions{forceExportName: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ro, _ := sparseExport(t, "ro", false)
			rw, disk := sparseExport(t, "rw", true)
			_, network, addr := serveT(t, tc.unix, tc.sopts, ro, rw)
			structured := !tc.copts.DisableStructuredReplies
			if structured {
				tc.copts.MetaContexts = []string{ContextBaseAllocation}
			}
			c := dialT(t, nbdURL(network, addr, "ro"), tc.copts)
			if got := readAllChunks(t, c, c.Size(), 5<<20+13); !bytes.Equal(got, disk.bytes()) {
				t.Fatal("read-only export content differs")
			}
			if _, err := c.WriteAt([]byte{1}, 0); !errors.Is(err, syscall.EPERM) {
				t.Fatalf("write to read-only: %v", err)
			}
			if structured && !tc.sopts.disableGo && !tc.copts.forceExportName {
				checkAllocation(t, c, disk)
			}
			checkWritable(t, dialT(t, nbdURL(network, addr, "rw"), tc.copts), disk)
		})
	}
}

func checkAllocation(t *testing.T, c *Client, disk *memDisk) {
	t.Helper()
	got, err := c.BlockStatus(testCtx(t), ContextBaseAllocation, 0, c.Size())
	if err != nil {
		t.Fatal(err)
	}
	want, _ := disk.allocation(context.Background(), 0, c.Size())
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("block status\n got %+v\nwant %+v", got, want)
	}
	part, err := c.BlockStatus(testCtx(t), ContextBaseAllocation, 5<<20+100, 1000)
	if err != nil || len(part) != 1 || part[0].Offset != 5<<20+100 || part[0].Length != 1000 {
		t.Fatalf("partial block status %+v: %v", part, err)
	}
}

func checkWritable(t *testing.T, c *Client, disk *memDisk) {
	t.Helper()
	ctx := testCtx(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 3<<20) // 48 MiB: split
	if _, err := c.WriteAtContext(ctx, data, 7); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteZeroes(ctx, 1<<20, 2<<20); err != nil {
		t.Fatal(err)
	}
	if err := c.Trim(ctx, 0, 4096); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	want := append(make([]byte, 0, len(data)), data...)
	clear(want[1<<20-7 : 3<<20-7])
	if got := disk.bytes()[7 : 7+len(data)]; !bytes.Equal(got, want) {
		t.Fatal("backend content differs after writes")
	}
	got := make([]byte, len(data))
	if _, err := c.ReadAtContext(ctx, got, 7); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back: %v", err)
	}
	if _, err := c.WriteAtContext(ctx, []byte{1, 2}, c.Size()-1); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past end: %v", err)
	}
}

// rawSession opens a handshake by hand so tests can send any request.
func rawSession(t *testing.T, network, addr, export string, meta bool) *clientHandshake {
	t.Helper()
	conn, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	h, err := startClientHandshake(conn)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.structuredReply(); !ok || err != nil {
		t.Fatalf("structured replies: %v", err)
	}
	if meta {
		if _, _, err := h.metaContexts(optSetMetaContext, export, []string{ContextBaseAllocation}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.info(optGo, export); err != nil {
		t.Fatal(err)
	}
	return h
}

// rawRequest sends req and returns the error value of its reply.
func rawRequest(t *testing.T, h *clientHandshake, req request, payload []byte) uint32 {
	t.Helper()
	b := make([]byte, requestHeaderLen, requestHeaderLen+len(payload))
	req.encode(b)
	if _, err := h.conn.Write(append(b, payload...)); err != nil {
		t.Fatal(err)
	}
	code := uint32(0)
	for {
		var hdr [chunkHeaderLen]byte
		if _, err := io.ReadFull(h.r, hdr[:4]); err != nil {
			t.Fatalf("read reply: %v", err)
		}
		if binary.BigEndian.Uint32(hdr[:]) == simpleReplyMagic {
			_, _ = io.ReadFull(h.r, hdr[4:16])
			return binary.BigEndian.Uint32(hdr[4:])
		}
		if _, err := io.ReadFull(h.r, hdr[4:]); err != nil {
			t.Fatal(err)
		}
		typ, n := binary.BigEndian.Uint16(hdr[6:]), binary.BigEndian.Uint32(hdr[16:])
		body := make([]byte, n)
		if _, err := io.ReadFull(h.r, body); err != nil {
			t.Fatal(err)
		}
		if typ&chunkErrorBit != 0 {
			code = binary.BigEndian.Uint32(body)
		}
		if binary.BigEndian.Uint16(hdr[4:])&replyFlagDone != 0 {
			return code
		}
	}
}

func TestServerValidation(t *testing.T) {
	ro, _ := sparseExport(t, "ro", false)
	rw, _ := sparseExport(t, "rw", true)
	_, network, addr := serveT(t, false, ServerOptions{}, ro, rw)
	const size = 64 << 20
	cases := []struct {
		name    string
		export  string
		meta    bool
		req     request
		payload int
		want    uint32
	}{
		{"unknown command", "ro", true, request{typ: 42, length: 1}, 0, codeEINVAL},
		{"cache unsupported", "ro", true, request{typ: cmdCache, length: 1}, 0, codeEINVAL},
		{"read beyond end", "ro", true, request{typ: cmdRead, offset: size - 1, length: 2}, 0, codeEINVAL},
		{"read offset overflow", "ro", true, request{typ: cmdRead, offset: 1<<64 - 1, length: 10}, 0, codeEINVAL},
		{"read zero length", "ro", true, request{typ: cmdRead}, 0, codeEINVAL},
		{"read too large", "ro", true, request{typ: cmdRead, length: MaxRequestSize + 1}, 0, codeEINVAL},
		{"read bad flag", "ro", true, request{typ: cmdRead, flags: cmdFlagReqOne, length: 1}, 0, codeEINVAL},
		{"write read-only", "ro", true, request{typ: cmdWrite, length: 4}, 4, codeEPERM},
		{"trim read-only", "ro", true, request{typ: cmdTrim, length: 4}, 0, codeEPERM},
		{"write beyond end", "rw", true, request{typ: cmdWrite, offset: size - 2, length: 4}, 4, codeENOSPC},
		{"zeroes beyond end", "rw", true, request{typ: cmdWriteZeroes, offset: size, length: 1}, 0, codeENOSPC},
		{"block status no meta", "ro", false, request{typ: cmdBlockStatus, length: 512}, 0, codeEINVAL},
		{"block status beyond", "ro", true, request{typ: cmdBlockStatus, offset: size, length: 1}, 0, codeEINVAL},
		{"valid read", "ro", true, request{typ: cmdRead, offset: size - 10, length: 10}, 0, 0},
		{"valid block status", "ro", true, request{typ: cmdBlockStatus, flags: cmdFlagReqOne, length: size}, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := rawSession(t, network, addr, tc.export, tc.meta)
			tc.req.handle = 77
			if got := rawRequest(t, h, tc.req, make([]byte, tc.payload)); got != tc.want {
				t.Fatalf("error %d, want %d", got, tc.want)
			}
			// The connection stays usable.
			if got := rawRequest(t, h, request{typ: cmdRead, handle: 78, length: 512}, nil); got != 0 {
				t.Fatalf("follow-up read failed: %d", got)
			}
		})
	}
	t.Run("oversized write disconnects", func(t *testing.T) {
		h := rawSession(t, network, addr, "rw", false)
		b := make([]byte, requestHeaderLen)
		(&request{typ: cmdWrite, length: MaxRequestSize + 1}).encode(b)
		_, _ = h.conn.Write(b)
		if _, err := h.r.ReadByte(); err == nil {
			t.Fatal("server kept the connection")
		}
	})
}

func TestServerListInfoMeta(t *testing.T) {
	a, _ := sparseExport(t, "a", false)
	b, _ := sparseExport(t, "b", true)
	_, network, addr := serveT(t, false, ServerOptions{}, a, b)
	ctx := testCtx(t)
	list, err := ListExports(ctx, nbdURL(network, addr, ""), ClientOptions{})
	if err != nil || !reflect.DeepEqual(list, []ExportEntry{{"a", "test a"}, {"b", "test b"}}) {
		t.Fatalf("list %+v: %v", list, err)
	}
	info, err := GetInfo(ctx, nbdURL(network, addr, "b"), ClientOptions{})
	want := ExportInfo{Name: "b", Description: "test b", Size: 64 << 20, MinBlockSize: 1, PreferredBlockSize: 4096,
		MaxBlockSize: MaxRequestSize, Flags: FlagHasFlags | FlagSendTrim | FlagSendWriteZeroes | FlagSendFlush | FlagSendFUA}
	if err != nil || info != want {
		t.Fatalf("info %+v: %v", info, err)
	}
	ctxs, err := ListMetaContexts(ctx, nbdURL(network, addr, "a"), ClientOptions{})
	if err != nil || !reflect.DeepEqual(ctxs, []string{ContextBaseAllocation}) {
		t.Fatalf("meta contexts %v: %v", ctxs, err)
	}
	if _, err := GetInfo(ctx, nbdURL(network, addr, "zz"), ClientOptions{}); !errors.Is(err, ErrUnknownExport) {
		t.Fatalf("unknown export: %v", err)
	}
	c := dialT(t, nbdURL(network, addr, "a"), ClientOptions{})
	if !c.Info().CanMultiConn() || !c.Info().ReadOnly() {
		t.Fatalf("read-only export flags %v", c.Info().Flags)
	}
}

func TestServerAllowlist(t *testing.T) {
	exp, _ := sparseExport(t, "d", false)
	var asked atomic.Int32
	_, network, addr := serveT(t, false, ServerOptions{Allow: func(net.Addr) bool { asked.Add(1); return false }}, exp)
	if _, err := Dial(testCtx(t), nbdURL(network, addr, "d"), ClientOptions{}); err == nil {
		t.Fatal("refused client connected")
	}
	if asked.Load() != 1 {
		t.Fatalf("allowlist asked %d times", asked.Load())
	}
}

// gateReader blocks reads until released and counts concurrency.
type gateReader struct {
	release         chan struct{}
	cur, peak, hits atomic.Int32
}

func (g *gateReader) ReadAt(p []byte, _ int64) (int, error) {
	n := g.cur.Add(1)
	defer g.cur.Add(-1)
	for {
		old := g.peak.Load()
		if n <= old || g.peak.CompareAndSwap(old, n) {
			break
		}
	}
	g.hits.Add(1)
	<-g.release
	clear(p)
	return len(p), nil
}

func TestClientDroppedConnection(t *testing.T) {
	g := &gateReader{release: make(chan struct{})}
	srv, network, addr := serveT(t, false, ServerOptions{}, Export{Name: "d", Size: 1 << 30, ReaderAt: g})
	c := dialT(t, nbdURL(network, addr, "d"), ClientOptions{})
	errs := make(chan error, 8)
	for i := range 8 {
		go func() {
			_, err := c.ReadAtContext(context.Background(), make([]byte, 4096), int64(i)<<20)
			errs <- err
		}()
	}
	for g.hits.Load() < 8 {
		time.Sleep(time.Millisecond)
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(expired) }() // closes connections hard
	for range 8 {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("read succeeded on a dropped connection")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("read hung after the connection dropped")
		}
	}
	if _, err := c.ReadAt(make([]byte, 1), 0); err == nil || c.Err() == nil {
		t.Fatal("client still usable after the drop")
	}
	close(g.release)
	<-shut
}

func TestClientTimeout(t *testing.T) {
	g := &gateReader{release: make(chan struct{})}
	_, network, addr := serveT(t, false, ServerOptions{}, Export{Name: "d", Size: 1 << 20, ReaderAt: g})
	c := dialT(t, nbdURL(network, addr, "d"), ClientOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	buf := make([]byte, 4096)
	if _, err := c.ReadAtContext(ctx, buf, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timed out read: %v", err)
	}
	close(g.release)
	if _, err := c.ReadAtContext(testCtx(t), buf, 4096); err != nil || c.Err() != nil {
		t.Fatalf("read after timeout: %v", err)
	}
}

func TestServerShutdown(t *testing.T) {
	g := &gateReader{release: make(chan struct{})}
	srv, err := NewServer(ServerOptions{}, Export{Name: "d", Size: 1 << 20, ReaderAt: g})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), ln) }()
	c := dialT(t, "nbd://"+ln.Addr().String()+"/d", ClientOptions{})
	read := make(chan error, 1)
	go func() {
		_, err := c.ReadAtContext(testCtx(t), make([]byte, 512), 0)
		read <- err
	}()
	for g.hits.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(testCtx(t)) }()
	time.Sleep(50 * time.Millisecond)
	close(g.release) // the request in flight completes
	if err := <-read; err != nil {
		t.Fatalf("in-flight read failed during shutdown: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if _, err := Dial(testCtx(t), "nbd://"+ln.Addr().String()+"/d", ClientOptions{}); err == nil {
		t.Fatal("dial after shutdown succeeded")
	}
}

func TestServerPipelining(t *testing.T) {
	exp, disk := sparseExport(t, "d", false)
	var cur, peak atomic.Int32
	inner := exp.ReaderAt
	exp.ReaderAt = readerFunc(func(p []byte, off int64) (int, error) {
		n := cur.Add(1)
		defer cur.Add(-1)
		if n > peak.Load() {
			peak.Store(n)
		}
		time.Sleep(time.Millisecond)
		return inner.ReadAt(p, off)
	})
	_, network, addr := serveT(t, false, ServerOptions{}, exp)
	c := dialT(t, nbdURL(network, addr, "d"), ClientOptions{MaxInFlight: 64})
	pipelinedReads(t, c, disk.b)
	if peak.Load() < 2 {
		t.Fatalf("requests never overlapped (peak %d)", peak.Load())
	}
	m, err := DialMulti(testCtx(t), nbdURL(network, addr, "d"), ClientOptions{}, 3)
	if err != nil || len(m.Clients()) != 3 {
		t.Fatalf("DialMulti: %v", err)
	}
	defer m.Close()
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 1<<20)
			off := int64(i) << 20
			if _, err := m.ReadAt(p, off); err != nil || !bytes.Equal(p, disk.b[off:off+1<<20]) {
				t.Error("multi-conn read failed", err)
			}
		}()
	}
	wg.Wait()
	rw, _ := sparseExport(t, "rw", true)
	_, network, addr = serveT(t, false, ServerOptions{}, rw)
	single, err := DialMulti(testCtx(t), nbdURL(network, addr, "rw"), ClientOptions{}, 3)
	if err != nil || len(single.Clients()) != 1 {
		t.Fatalf("writable export without CAN_MULTI_CONN: %v", err)
	}
	single.Close()
}

type readerFunc func([]byte, int64) (int, error)

func (f readerFunc) ReadAt(p []byte, off int64) (int, error) { return f(p, off) }
