package nbd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// needBins skips the test when a peer binary is missing.
func needBins(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (apt-get install -y qemu-utils qemu-system-x86 libnbd-bin nbdkit)", b)
		}
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// run executes a command and fails the test on error.
func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// startProc starts a long-running peer and stops it at cleanup.
func startProc(t testing.TB, name string, args ...string) *bytes.Buffer {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	return &out.b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitListening polls until a server accepts connections.
func waitListening(t testing.TB, network, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s %s not listening after 10s", network, addr)
}

// peerEndpoint returns listen arguments and a URL prefix for a TCP port or
// a unix socket in dir.
func peerEndpoint(t testing.TB, unix bool, dir string) (network, addr string) {
	if unix {
		return "unix", filepath.Join(dir, fmt.Sprintf("nbd-%d.sock", rand.Int())) //nolint:gosec
	}
	return "tcp", "127.0.0.1:" + strconv.Itoa(freePort(t))
}

func nbdURL(network, addr, export string) string {
	if network == "unix" {
		return "nbd+unix:///" + export + "?socket=" + addr
	}
	return "nbd://" + addr + "/" + export
}

// startQemuNBD runs qemu-nbd on a TCP port or unix socket and returns the
// URL of export "disk".
func startQemuNBD(t testing.TB, unix bool, args ...string) string {
	t.Helper()
	network, addr := peerEndpoint(t, unix, t.TempDir())
	base := []string{"-t", "-e", "8", "-x", "disk"}
	if network == "unix" {
		base = append(base, "-k", addr)
	} else {
		host, port, _ := net.SplitHostPort(addr)
		base = append(base, "-b", host, "-p", port)
	}
	startProc(t, "qemu-nbd", append(base, args...)...)
	waitListening(t, network, addr)
	return nbdURL(network, addr, "disk")
}

func dialT(t testing.TB, url string, opts ClientOptions) *Client {
	t.Helper()
	c, err := Dial(testCtx(t), url, opts)
	if err != nil {
		t.Fatalf("Dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// region is a written range of a test image.
type region struct{ off, n int64 }

// makeImage writes a sparse raw image of size bytes with random data in
// regions and returns its path and content.
func makeImage(t testing.TB, dir string, size int64, regions []region) (string, []byte) {
	t.Helper()
	path := filepath.Join(dir, "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	want := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, uint64(size)))
	for _, r := range regions {
		for i := r.off; i < r.off+r.n; i++ {
			want[i] = byte(rng.Uint32()) | 1
		}
		if _, err := f.WriteAt(want[r.off:r.off+r.n], r.off); err != nil {
			t.Fatal(err)
		}
	}
	return path, want
}

// testRegions are the data ranges of the 64 MiB test image.
func testRegions() []region {
	return []region{
		{0, 1 << 20}, {5<<20 + 512, 300 << 10}, {20 << 20, 64 << 10}, {40 << 20, 9 << 20}, {64<<20 - 8192, 8192},
	}
}

// allocFlags is one range of allocation state.
type allocFlags struct {
	Start, Length int64
	Hole, Zero    bool
}

// qemuImgMap returns `qemu-img map` as merged allocation ranges.
func qemuImgMap(t testing.TB, format, path string) []allocFlags {
	t.Helper()
	out := run(t, "qemu-img", "map", "-U", "--output=json", "-f", format, path)
	var m []struct {
		Start, Length int64
		Data, Zero    bool
	}
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("parse qemu-img map: %v\n%s", err, out)
	}
	var res []allocFlags
	for _, e := range m {
		res = appendAlloc(res, allocFlags{e.Start, e.Length, !e.Data, e.Zero})
	}
	return res
}

func appendAlloc(res []allocFlags, a allocFlags) []allocFlags {
	if n := len(res); n > 0 && res[n-1].Hole == a.Hole && res[n-1].Zero == a.Zero &&
		res[n-1].Start+res[n-1].Length == a.Start {
		res[n-1].Length += a.Length
		return res
	}
	return append(res, a)
}

func extentsToAlloc(ext []Extent) []allocFlags {
	var res []allocFlags
	for _, e := range ext {
		res = appendAlloc(res, allocFlags{e.Offset, e.Length, e.Flags&StateHole != 0, e.Flags&StateZero != 0})
	}
	return res
}

// readAllChunks reads the whole export in odd-sized pieces.
func readAllChunks(t testing.TB, r interface {
	ReadAtContext(context.Context, []byte, int64) (int, error)
}, size int64, chunk int) []byte {
	t.Helper()
	got := make([]byte, size)
	for off := int64(0); off < size; off += int64(chunk) {
		n := min(int64(chunk), size-off)
		if _, err := r.ReadAtContext(testCtx(t), got[off:off+n], off); err != nil {
			t.Fatalf("read %d at %d: %v", n, off, err)
		}
	}
	return got
}

// memDisk is an in-memory export backend.
type memDisk struct {
	mu sync.RWMutex
	b  []byte
}

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if off >= int64(len(m.b)) {
		return 0, fmt.Errorf("read beyond end")
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, fmt.Errorf("short read")
	}
	return n, nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off+int64(len(p)) > int64(len(m.b)) {
		return 0, fmt.Errorf("write beyond end")
	}
	return copy(m.b[off:], p), nil
}

func (m *memDisk) bytes() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return bytes.Clone(m.b)
}

// allocation reports 4 KiB-aligned all-zero blocks as hole+zero.
func (m *memDisk) allocation(_ context.Context, off, length int64) ([]Extent, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Extent
	start := off - off%4096
	for p := start; p < off+length; p += 4096 {
		end := min(p+4096, int64(len(m.b)))
		flags := uint32(0)
		if allZero(m.b[p:end]) {
			flags = StateHole | StateZero
		}
		out = appendExtent(out, Extent{Offset: p, Length: end - p, Flags: flags})
	}
	return out, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// serveT runs a Server on a loopback listener (TCP or unix) and returns
// the server and the URL prefix without export name.
func serveT(t testing.TB, unix bool, opts ServerOptions, exports ...Export) (*Server, string, string) {
	t.Helper()
	s, err := NewServer(opts, exports...)
	if err != nil {
		t.Fatal(err)
	}
	network, addr := "tcp", "127.0.0.1:0"
	if unix {
		network, addr = peerEndpoint(t, true, t.TempDir())
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, network, ln.Addr().String()
}
