package nfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// memFile is an in-memory file recording flushes.
type memFile struct {
	mu      sync.Mutex
	b       []byte
	flushes int
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off+int64(len(p)) > int64(len(m.b)) {
		return 0, errors.New("write past end")
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) Flush() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flushes++
	return nil
}

func (m *memFile) bytes() []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Clone(m.b)
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// testExport is /holdfast/x with a read-only disk-0.img, a writable
// disk-1.img and a small vm.json.
func testExport(path string) (Export, *memFile, *memFile) {
	ro := &memFile{b: randomBytes(3<<20+1234, 1)}
	rw := &memFile{b: make([]byte, 2<<20)}
	return Export{Path: path, ModTime: time.Unix(1_700_000_000, 5), Files: []File{
		{Name: "disk-0.img", Size: int64(len(ro.b)), ReaderAt: ro},
		{Name: "disk-1.img", Size: int64(len(rw.b)), ReaderAt: rw, WriterAt: rw, Flush: rw.Flush},
		{Name: "vm.json", Size: 11, ReaderAt: bytes.NewReader([]byte(`{"vm":"x"}` + "\n"))},
	}}, ro, rw
}

// running is a served Server.
type running struct {
	srv  *Server
	l    Listeners
	stop func()
}

func (r running) port(a net.Addr) int {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.Port
	case *net.UDPAddr:
		return v.Port
	}
	return 0
}

func (r running) nfsPort() int   { return r.port(r.l.NFSTCP.Addr()) }
func (r running) mountPort() int { return r.port(r.l.MountTCP.Addr()) }
func (r running) pmapPort() int  { return r.port(r.l.PortmapTCP.Addr()) }

// url is a libnfs URL with explicit ports.
func (r running) url(path string) string {
	return fmt.Sprintf("nfs://127.0.0.1%s?nfsport=%d&mountport=%d", path, r.nfsPort(), r.mountPort())
}

// serveT serves srv on loopback with ephemeral ports until the test ends.
func serveT(t testing.TB, srv *Server) running {
	t.Helper()
	l, err := Listen("127.0.0.1", 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, srv, l)
}

func serveOn(t testing.TB, srv *Server, l Listeners) running {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Serve did not return")
			}
		})
	}
	t.Cleanup(stop)
	return running{srv: srv, l: l, stop: stop}
}

func needBins(t testing.TB, bins ...string) {
	t.Helper()
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (apt-get install -y libnfs-utils qemu-utils)", b)
		}
	}
}

// run runs a command with a timeout and returns its output.
func run(t testing.TB, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %v: %w\n%s", name, args, err, out)
	}
	return out, nil
}

func mustRun(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// needBinsOK reports whether the tools are installed.
func needBinsOK(bins ...string) bool {
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			return false
		}
	}
	return true
}
