package vsphere

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/source/file"
)

// countingFile is an ExtentFile in memory that counts requests and bytes
// and can fail.
type countingFile struct {
	data            []byte
	requests, bytes atomic.Int64
	fail            atomic.Bool
	mu              sync.Mutex
	maxWindows      int
	ra              *readAhead
}

func (f *countingFile) ReadAt(p []byte, off int64) (int, error) {
	f.requests.Add(1)
	f.bytes.Add(int64(len(p)))
	if f.ra != nil {
		f.mu.Lock()
		f.ra.mu.Lock()
		f.maxWindows = max(f.maxWindows, len(f.ra.windows))
		f.ra.mu.Unlock()
		f.mu.Unlock()
	}
	if f.fail.Load() {
		return 0, errors.New("injected failure")
	}
	if off >= int64(len(f.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *countingFile) Close() error { return nil }
func (f *countingFile) Size() int64  { return int64(len(f.data)) }

func newCountingFile(size int) *countingFile {
	data := make([]byte, size)
	_, _ = rand.NewChaCha8([32]byte{9}).Read(data)
	return &countingFile{data: data}
}

// readChunks reads the chunks named by idx (of size chunk) with workers
// goroutines and checks the bytes.
func readChunks(t *testing.T, r io.ReaderAt, f *countingFile, chunk int64, idx []int64, workers int) {
	t.Helper()
	next := make(chan int64)
	var wg sync.WaitGroup
	var bad atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunk)
			for i := range next {
				off := i * chunk
				n := min(chunk, int64(len(f.data))-off)
				if _, err := r.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
					t.Errorf("ReadAt(%d): %v", off, err)
				}
				if !bytes.Equal(buf[:n], f.data[off:off+n]) {
					bad.Add(1)
				}
			}
		}()
	}
	for _, i := range idx {
		next <- i
	}
	close(next)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d reads returned wrong bytes", bad.Load())
	}
}

func TestReadAheadSequential(t *testing.T) {
	const size, chunk = 64<<20 + 300<<10, 1 << 20
	f := newCountingFile(size)
	r := newReadAhead(f, readAheadWindow, readAheadSlots)
	f.ra = r
	var idx []int64
	for i := range int64((size + chunk - 1) / chunk) {
		idx = append(idx, i)
	}
	readChunks(t, r, f, chunk, idx, 4)
	waitWindows(r)
	f.mu.Lock()
	defer f.mu.Unlock()
	// 65 chunk reads; in 4 MiB windows about 17 requests, a few more when
	// the workers' reads arrive out of order.
	t.Logf("%d requests, %d bytes, at most %d windows", f.requests.Load(), f.bytes.Load(), f.maxWindows)
	if n := f.requests.Load(); n > 40 {
		t.Errorf("%d requests for %d sequential chunk reads: not coalesced", n, len(idx))
	}
	if b := f.bytes.Load(); b > size*3/2 { // a chunk read directly and again in a window when reads overtake each other
		t.Errorf("fetched %d bytes for a file of %d", b, size)
	}
	if f.maxWindows > readAheadSlots {
		t.Errorf("%d windows held, at most %d allowed", f.maxWindows, readAheadSlots)
	}
}

// Isolated chunks (an incremental's scattered changes) fetch exactly what
// is asked.
func TestReadAheadScattered(t *testing.T) {
	const chunk = 1 << 20
	f := newCountingFile(64 << 20)
	r := newReadAhead(f, readAheadWindow, readAheadSlots)
	idx := []int64{0, 2, 5, 9, 11, 20, 22, 40, 63}
	readChunks(t, r, f, chunk, idx, 4)
	if f.requests.Load() != int64(len(idx)) || f.bytes.Load() != int64(len(idx))*chunk {
		t.Errorf("%d requests, %d bytes for %d isolated chunks: want one request of one chunk each",
			f.requests.Load(), f.bytes.Load(), len(idx))
	}
}

// A failed window read falls back to the read's own request, which
// reports the error.
func TestReadAheadFailure(t *testing.T) {
	f := newCountingFile(16 << 20)
	r := newReadAhead(f, readAheadWindow, readAheadSlots)
	buf := make([]byte, 1<<20)
	if _, err := r.ReadAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	f.fail.Store(true)
	if _, err := r.ReadAt(buf, 1<<20); err == nil {
		t.Fatal("read succeeded while the file fails")
	}
	waitWindows(r)
	r.mu.Lock()
	if n := len(r.windows); n != 0 {
		t.Errorf("%d failed windows kept", n)
	}
	r.mu.Unlock()
	f.fail.Store(false)
	if _, err := r.ReadAt(buf, 2<<20); err != nil || !bytes.Equal(buf, f.data[2<<20:3<<20]) {
		t.Fatalf("read after the failure: %v", err)
	}
}

// A sequential run that stops fetches at most two windows beyond its end.
func TestReadAheadRunEnd(t *testing.T) {
	const chunk = 1 << 20
	f := newCountingFile(64 << 20)
	files := readAheadFiles{files: oneFile{f}, window: readAheadWindow, slots: readAheadSlots}
	ef, err := files.OpenFile(context.Background(), "disk-flat.vmdk")
	if err != nil {
		t.Fatal(err)
	}
	r := ef.(*readAhead)
	readChunks(t, r, f, chunk, []int64{10, 11, 12, 13, 14, 15, 16, 17}, 1)
	waitWindows(r)
	if b := f.bytes.Load(); b > 8*chunk+2*readAheadWindow {
		t.Errorf("fetched %d bytes for a run of 8 MiB", b)
	}
}

type oneFile struct{ f *countingFile }

func (o oneFile) OpenFile(context.Context, string) (file.ExtentFile, error) { return o.f, nil }

// waitWindows waits for the windows in flight.
func waitWindows(r *readAhead) {
	r.mu.Lock()
	windows := append([]*raWindow(nil), r.windows...)
	r.mu.Unlock()
	for _, w := range windows {
		<-w.done
	}
}
