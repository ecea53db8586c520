package vsphere

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// fileServer serves one datastore file at /folder/vm/disk-flat.vmdk with
// Range support; fail decides per request whether to answer an error
// status instead.
type fileServer struct {
	data     []byte
	requests atomic.Int64
	mu       sync.Mutex
	fail     func(n int64, r *http.Request) int
	ranges   []string
}

func (f *fileServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.requests.Add(1)
	f.mu.Lock()
	f.ranges = append(f.ranges, r.Header.Get("Range"))
	fail := f.fail
	f.mu.Unlock()
	if q := r.URL.Query(); q.Get("dcPath") != "DC0" || q.Get("dsName") != "ds1" || r.URL.Path != "/folder/vm/disk-flat.vmdk" {
		http.NotFound(w, r)
		return
	}
	if fail != nil {
		if code := fail(n, r); code != 0 {
			w.WriteHeader(code)
			return
		}
	}
	http.ServeContent(w, r, "disk-flat.vmdk", time.Time{}, bytes.NewReader(f.data))
}

func testFiles(t *testing.T, fs *fileServer, conns int, clk clock.Clock) *datastoreFiles {
	t.Helper()
	srv := httptest.NewTLSServer(fs)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	return &datastoreFiles{hc: srv.Client(), base: url.URL{Scheme: u.Scheme, Host: u.Host}, dc: "DC0", ds: "ds1", dir: "vm",
		o: httpOptions{Connections: conns, Retries: 3, Backoff: 100 * time.Millisecond, Clock: clk}}
}

func testData(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i/4099)
	}
	return b
}

func TestHTTPFileReads(t *testing.T) {
	fs := &fileServer{data: testData(6*splitMin + 123)}
	files := testFiles(t, fs, 4, nil)
	ef, err := files.OpenFile(context.Background(), "disk-flat.vmdk")
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	if ef.Size() != int64(len(fs.data)) {
		t.Fatalf("size %d", ef.Size())
	}
	tests := []struct {
		name string
		off  int64
		n    int
		want int // requests
	}{
		{name: "small", off: 10, n: 4096, want: 1},
		{name: "split", off: 1, n: 3 * splitMin, want: 3},
		{name: "split in Connections", off: 1, n: 6 * splitMin, want: 4},
		{name: "below split size", off: 0, n: 2*splitMin - 1, want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := fs.requests.Load()
			p := make([]byte, tc.n)
			n, err := ef.ReadAt(p, tc.off)
			if err != nil || n != tc.n || !bytes.Equal(p, fs.data[tc.off:tc.off+int64(tc.n)]) {
				t.Fatalf("read %d, %v; bytes equal %v", n, err, bytes.Equal(p, fs.data[tc.off:tc.off+int64(tc.n)]))
			}
			if got := fs.requests.Load() - before; got != int64(tc.want) {
				t.Errorf("%d requests, want %d", got, tc.want)
			}
		})
	}
	p := make([]byte, 1000)
	n, err := ef.ReadAt(p, int64(len(fs.data))-100)
	if n != 100 || !errors.Is(err, io.EOF) || !bytes.Equal(p[:100], fs.data[len(fs.data)-100:]) {
		t.Errorf("read across the end: %d, %v", n, err)
	}
	if n, err := ef.ReadAt(p, int64(len(fs.data))); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("read at the end: %d, %v", n, err)
	}
}

func TestHTTPFileRetries(t *testing.T) {
	clk := clock.NewFake(time.Unix(0, 0))
	fs := &fileServer{data: testData(1 << 20)}
	files := testFiles(t, fs, 1, clk)
	ef, err := files.OpenFile(context.Background(), "disk-flat.vmdk")
	if err != nil {
		t.Fatal(err)
	}
	start := fs.requests.Load()
	fs.mu.Lock()
	fs.fail = func(n int64, _ *http.Request) int {
		if n <= start+2 {
			return http.StatusServiceUnavailable
		}
		return 0
	}
	fs.mu.Unlock()
	p := make([]byte, 4096)
	if _, err := ef.ReadAt(p, 8192); err != nil || !bytes.Equal(p, fs.data[8192:8192+4096]) {
		t.Fatalf("read after two failures: %v", err)
	}
	if waited := clk.Since(time.Unix(0, 0)); waited != 300*time.Millisecond {
		t.Errorf("backed off %v, want 100ms + 200ms", waited)
	}
	fs.mu.Lock()
	fs.fail = func(int64, *http.Request) int { return http.StatusServiceUnavailable }
	fs.mu.Unlock()
	before := fs.requests.Load()
	if _, err := ef.ReadAt(p, 0); !errors.Is(err, ErrDatastoreHTTP) || !strings.Contains(err.Error(), "503") {
		t.Errorf("read while the server fails: %v", err)
	}
	if got := fs.requests.Load() - before; got != 4 {
		t.Errorf("%d requests, want 1 + 3 retries", got)
	}
}

func TestHTTPFileRefusals(t *testing.T) {
	tests := []struct {
		name string
		code int
		want string
	}{
		{name: "forbidden", code: http.StatusForbidden, want: "may not read the datastore"},
		{name: "ignores range", code: -1, want: "ignored the Range header"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := &fileServer{data: testData(1 << 20)}
			files := testFiles(t, fs, 1, clock.NewFake(time.Unix(0, 0)))
			ef, err := files.OpenFile(context.Background(), "disk-flat.vmdk")
			if err != nil {
				t.Fatal(err)
			}
			fs.mu.Lock()
			fs.fail = func(_ int64, r *http.Request) int {
				if tc.code == -1 {
					r.Header.Del("Range")
					return 0
				}
				return tc.code
			}
			fs.mu.Unlock()
			before := fs.requests.Load()
			if _, err := ef.ReadAt(make([]byte, 512), 512); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
			if got := fs.requests.Load() - before; got != 1 {
				t.Errorf("%d requests: a refusal is not retried", got)
			}
		})
	}
	fs := &fileServer{data: testData(10)}
	files := testFiles(t, fs, 1, nil)
	for _, name := range []string{"../other/disk-flat.vmdk", "/etc/passwd", "missing.vmdk"} {
		if _, err := files.OpenFile(context.Background(), name); !errors.Is(err, ErrDatastoreHTTP) {
			t.Errorf("open %q: %v", name, err)
		}
	}
}

func TestHTTPFileCancelled(t *testing.T) {
	fs := &fileServer{data: testData(1 << 20)}
	files := testFiles(t, fs, 2, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ef, err := files.OpenFile(ctx, "disk-flat.vmdk")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	before := fs.requests.Load()
	if _, err := ef.ReadAt(make([]byte, 1<<20), 0); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v", err)
	}
	if got := fs.requests.Load() - before; got != 0 {
		t.Errorf("%d requests after cancel", got)
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in                string
		first, last, size int64
		ok                bool
	}{
		{"bytes 0-0/10", 0, 0, 10, true},
		{"bytes 5-9/10", 5, 9, 10, true},
		{"bytes */0", -1, -1, 0, true},
		{"bytes 0-9/*", 0, 9, -1, true},
		{"bytes 5-10/10", 0, 0, 0, false},
		{"bytes 9-5/10", 0, 0, 0, false},
		{"bytes -1-5/10", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes 0-1", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	}
	for _, tc := range tests {
		f, l, s, ok := parseContentRange(tc.in)
		if ok != tc.ok || ok && (f != tc.first || l != tc.last || s != tc.size) {
			t.Errorf("%q: %d %d %d %v", tc.in, f, l, s, ok)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-0/10", "bytes */0", "bytes 0-9/*", "bytes 9-5/10", "bytes 1-2/3/4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, size, ok := parseContentRange(s)
		if !ok {
			return
		}
		if first == -1 && last == -1 {
			return
		}
		if first < 0 || last < first || size >= 0 && last >= size {
			t.Errorf("%q accepted as %d-%d/%d", s, first, last, size)
		}
	})
}
