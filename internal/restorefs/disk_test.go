package restorefs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

func TestDiskReadAt(t *testing.T) {
	fx := standardFixture(t)
	img := fx.images[0].data
	size := int64(len(img))
	d := fx.open(t, nil, 0, Options{})
	if d.Size() != size || d.ChunkSize() != cs {
		t.Fatalf("size %d chunk size %d, want %d %d", d.Size(), d.ChunkSize(), size, cs)
	}
	tests := []struct {
		name    string
		off     int64
		n       int
		wantN   int
		wantEOF bool
	}{
		{"first bytes", 0, 100, 100, false},
		{"inside a chunk", 3*cs + 17, 4096, 4096, false},
		{"across a chunk boundary", 2*cs - 100, 200, 200, false},
		{"across several chunks", cs/2 + 3, 5 * cs, 5 * cs, false},
		{"data into zero chunks", 9*cs + 10, 2 * cs, 2 * cs, false},
		{"zero chunk", 11 * cs, cs, cs, false},
		{"hole chunk", 15*cs + 5, 1000, 1000, false},
		{"isolated hole", 33*cs - 10, cs + 20, cs + 20, false},
		{"deduplicated chunks", 20*cs + 1, 3 * cs, 3 * cs, false},
		{"whole disk", 0, int(size), int(size), false},
		{"tail chunk", 40 * cs, 1000, 1000, false},
		{"up to the end", size - 10, 10, 10, false},
		{"across the end", size - 10, 100, 10, true},
		{"at the end", size, 10, 0, true},
		{"beyond the end", size + cs, 10, 0, true},
		{"empty", 5, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := bytes.Repeat([]byte{0xee}, tt.n)
			n, err := d.ReadAt(p, tt.off)
			if n != tt.wantN || (err == io.EOF) != tt.wantEOF || err != nil && err != io.EOF {
				t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d, EOF %v", tt.n, tt.off, n, err, tt.wantN, tt.wantEOF)
			}
			if n > 0 && !bytes.Equal(p[:n], img[tt.off:tt.off+int64(n)]) {
				t.Fatal("bytes differ from the source image")
			}
		})
	}
	if _, err := d.ReadAt(make([]byte, 1), -1); err == nil || err == io.EOF {
		t.Errorf("negative offset: %v", err)
	}
}

func TestDiskRandomReads(t *testing.T) {
	fx := standardFixture(t)
	img := fx.images[0].data
	for _, o := range []Options{
		{},                                  // defaults
		{CacheBytes: 3 * cs},                // constant eviction
		{CacheBytes: cs / 2, ReadAhead: -1}, // no cache at all
	} {
		t.Run(fmt.Sprintf("cache=%d,readahead=%d", o.CacheBytes, o.ReadAhead), func(t *testing.T) {
			d := fx.open(t, nil, 0, o)
			rng := rand.New(rand.NewPCG(3, 4))
			for i := 0; i < 500; i++ {
				off := rng.Int64N(int64(len(img)) + 1000)
				p := make([]byte, rng.IntN(3*cs))
				n, err := d.ReadAt(p, off)
				want := max(0, min(int64(len(p)), int64(len(img))-off))
				if int64(n) != want || (err != nil && err != io.EOF) || (err == io.EOF) != (off+int64(len(p)) > int64(len(img))) {
					t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d bytes", len(p), off, n, err, want)
				}
				if !bytes.Equal(p[:n], img[min(off, int64(len(img))):min(off, int64(len(img)))+int64(n)]) {
					t.Fatalf("ReadAt(%d, %d): bytes differ", len(p), off)
				}
			}
			if st := d.Stats(); st.CachePeakBytes > max(o.CacheBytes, 0) && o.CacheBytes != 0 {
				t.Errorf("cache peak %d over the bound %d", st.CachePeakBytes, o.CacheBytes)
			}
		})
	}
}

func TestDiskZeroChunksNeverFetched(t *testing.T) {
	fx := standardFixture(t)
	cnt := newCountingStore(fx.r)
	d := fx.open(t, cnt, 0, Options{})
	p := make([]byte, 10*cs)
	for i := range p {
		p[i] = 1
	}
	if _, err := d.ReadAt(p, 10*cs); err != nil { // chunks 10-19: written zeros and holes
		t.Fatal(err)
	}
	if !bytes.Equal(p, make([]byte, len(p))) {
		t.Fatal("zero chunks do not read as zeros")
	}
	st := d.Stats()
	if cnt.gets.Load() != 0 || st.FetchedChunks != 0 || st.Misses != 0 {
		t.Errorf("zero chunks fetched: %d gets, stats %+v", cnt.gets.Load(), st)
	}
	if st.ZeroBytes != 10*cs {
		t.Errorf("zero bytes %d, want %d", st.ZeroBytes, 10*cs)
	}
}

func TestDiskAllocated(t *testing.T) {
	fx := standardFixture(t)
	d := fx.open(t, nil, 0, Options{})
	size := d.Size()
	tests := []struct {
		name     string
		off, len int64
		want     []Extent
	}{
		{"whole disk", 0, size, []Extent{
			{0, 10 * cs, false}, {10 * cs, 10 * cs, true}, {20 * cs, 6 * cs, false},
			{26 * cs, 4 * cs, true}, {30 * cs, 3 * cs, false}, {33 * cs, cs, true}, {34 * cs, size - 34*cs, false}}},
		{"inside data", 100, 200, []Extent{{100, 200, false}}},
		{"inside zeros", 12*cs + 5, 10, []Extent{{12*cs + 5, 10, true}}},
		{"straddling", 9*cs + 1, 2 * cs, []Extent{{9*cs + 1, cs - 1, false}, {10 * cs, cs + 1, true}}},
		{"past the end clipped", 40 * cs, 10 * cs, []Extent{{40 * cs, 1000, false}}},
		{"beyond the end", size, 100, nil},
		{"empty", 5, 0, nil},
		{"negative offset", -10, 20, []Extent{{0, 10, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := d.Allocated(tt.off, tt.len)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Allocated(%d, %d) = %v, want %v", tt.off, tt.len, got, tt.want)
			}
		})
	}
}

func TestDiskConcurrentReaders(t *testing.T) {
	fx := standardFixture(t)
	img := fx.images[0].data
	for _, o := range []Options{{}, {CacheBytes: 4 * cs}} {
		t.Run(fmt.Sprintf("cache=%d", o.CacheBytes), func(t *testing.T) {
			d := fx.open(t, nil, 0, o)
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for g := 0; g < 8; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(g), 9))
					seq := int64(g) * 5 * cs // half the readers read sequentially
					for i := 0; i < 150; i++ {
						off := rng.Int64N(int64(len(img)))
						if g%2 == 0 {
							off, seq = seq%int64(len(img)), seq+64<<10
						}
						p := make([]byte, min(int64(rng.IntN(2*cs)+1), int64(len(img))-off))
						if _, err := d.ReadAt(p, off); err != nil {
							errs <- err
							return
						}
						if !bytes.Equal(p, img[off:off+int64(len(p))]) {
							errs <- fmt.Errorf("reader %d: bytes at %d differ", g, off)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if st := d.Stats(); o.CacheBytes != 0 && st.CachePeakBytes > o.CacheBytes {
				t.Errorf("cache peak %d over the bound %d", st.CachePeakBytes, o.CacheBytes)
			}
		})
	}
}

// Readers of one missing chunk share one fetch.
func TestDiskSingleFlight(t *testing.T) {
	fx := standardFixture(t)
	cnt := newCountingStore(fx.r)
	cnt.gate = make(chan struct{})
	cnt.started = make(chan struct{}, 100)
	d := fx.open(t, cnt, 0, Options{ReadAhead: -1})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := make([]byte, 100)
			_, err := d.ReadAt(p, 2*cs+int64(g)*1000)
			errs <- err
		}()
	}
	<-cnt.started // the one fetch is running; let the others pile up
	for d.Stats().Hits < 9 {
		time.Sleep(time.Millisecond)
	}
	close(cnt.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := cnt.gets.Load(); n != 1 {
		t.Errorf("%d fetches for one chunk, want 1", n)
	}
	if st := d.Stats(); st.Misses != 1 || st.Hits != 9 {
		t.Errorf("stats %+v, want 1 miss and 9 hits", st)
	}
}

// The cache never holds more than its bound, counted in bytes, whatever
// the read pattern, and read-ahead stays within it.
func TestDiskCacheBound(t *testing.T) {
	fx := standardFixture(t)
	img := fx.images[0].data
	tests := []struct {
		name  string
		bound int64
		ra    int
	}{
		{"one chunk", cs, 0},
		{"three chunks with read-ahead", 3 * cs, 8},
		{"five chunks", 5*cs + 100, 4},
		{"smaller than a chunk", 1000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := fx.open(t, nil, 0, Options{CacheBytes: tt.bound, ReadAhead: tt.ra})
			var wg sync.WaitGroup
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p := make([]byte, 96<<10)
					for off := int64(g) * 7 * cs; off < int64(len(img)); off += int64(len(p)) {
						if _, err := d.ReadAt(p, off); err != nil && err != io.EOF {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			st := d.Stats()
			if st.CachePeakBytes > tt.bound || st.CacheBytes > tt.bound {
				t.Errorf("cache held %d bytes (peak %d), bound %d", st.CacheBytes, st.CachePeakBytes, tt.bound)
			}
			if st.FetchedBytes == 0 {
				t.Error("nothing fetched")
			}
		})
	}
	// A cache that can hold the whole disk fetches each distinct chunk once.
	cnt := newCountingStore(fx.r)
	d := fx.open(t, cnt, 0, Options{CacheBytes: 64 * cs, ReadAhead: -1})
	for i := 0; i < 3; i++ {
		if _, err := d.ReadAt(make([]byte, len(img)), 0); err != nil {
			t.Fatal(err)
		}
	}
	distinct := map[repo.ChunkID]bool{}
	for _, e := range d.Index().Entries {
		distinct[e.ID] = true
	}
	if got := cnt.gets.Load(); got != int64(len(distinct)) {
		t.Errorf("%d fetches, want %d (one per distinct chunk)", got, len(distinct))
	}
	if st := d.Stats(); st.CacheBytes != int64(len(distinct))*cs {
		t.Errorf("cache holds %d bytes, want %d", st.CacheBytes, len(distinct)*cs)
	}
}

func TestDiskReadAhead(t *testing.T) {
	fx := standardFixture(t)
	img := fx.images[0].data
	sequential := func(d *Disk) {
		p := make([]byte, 64<<10)
		for off := int64(0); off < int64(len(img)); off += int64(len(p)) {
			n, err := d.ReadAt(p, off)
			if err != nil && err != io.EOF || !bytes.Equal(p[:n], img[off:off+int64(n)]) {
				t.Fatalf("read at %d: %v or bytes differ", off, err)
			}
		}
	}
	t.Run("sequential", func(t *testing.T) {
		// Fetches take 2 ms (a remote repository): read-ahead starts
		// them while the reader still copies from the current chunk.
		cnt := newCountingStore(fx.r)
		cnt.delay = 2 * time.Millisecond
		d := fx.open(t, cnt, 0, Options{})
		sequential(d)
		st := d.Stats()
		// 21 distinct data chunks; all but the first two (read before the
		// access looks sequential) are read-ahead hits.
		if st.ReadAheadHits < 15 || st.ReadAheadChunks < st.ReadAheadHits {
			t.Errorf("read-ahead not used: %+v", st)
		}
		t.Logf("%+v", st)
	})
	t.Run("off", func(t *testing.T) {
		d := fx.open(t, nil, 0, Options{ReadAhead: -1})
		sequential(d)
		if st := d.Stats(); st.ReadAheadChunks != 0 || st.ReadAheadHits != 0 {
			t.Errorf("read-ahead used while off: %+v", st)
		}
	})
	t.Run("random", func(t *testing.T) {
		d := fx.open(t, nil, 0, Options{})
		rng := rand.New(rand.NewPCG(5, 6))
		p := make([]byte, 4096)
		for i := 0; i < 200; i++ {
			off := rng.Int64N(int64(len(img))/4096) * 4096 / (4 * cs) * (4 * cs) // chunk-aligned, spaced
			if _, err := d.ReadAt(p, off); err != nil {
				t.Fatal(err)
			}
		}
		if st := d.Stats(); st.ReadAheadChunks > 0 {
			t.Errorf("read-ahead on random reads: %+v", st)
		}
	})
}

// A damaged chunk gives an error naming point, disk and offset; errors
// are not cached, so the chunk reads once repaired.
func TestDiskCorruptChunk(t *testing.T) {
	fx := standardFixture(t)
	d := fx.open(t, nil, 0, Options{})
	id, ok := d.Index().Lookup(3)
	if !ok {
		t.Fatal("chunk 3 is not data")
	}
	name := filepath.Join(fx.root, "chunks", id.String()[:2], id.String())
	orig, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(orig)
	bad[len(bad)-5] ^= 0x40
	if err := os.WriteFile(name, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, 10)
	_, err = d.ReadAt(p, 3*cs+5)
	if !errors.Is(err, repo.ErrCorrupt) {
		t.Fatalf("read of a damaged chunk: %v, want ErrCorrupt", err)
	}
	for _, want := range []string{fx.m.ID, "disk 0", "chunk 3", fmt.Sprintf("offset %d", 3*cs)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if st := d.Stats(); st.Errors != 1 {
		t.Errorf("errors %d, want 1", st.Errors)
	}
	if err := os.WriteFile(name, orig, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(p, 3*cs+5); err != nil || !bytes.Equal(p, fx.images[0].data[3*cs+5:3*cs+15]) {
		t.Fatalf("read after repair: %v", err)
	}
}

func TestDiskFetchErrorShared(t *testing.T) {
	fx := standardFixture(t)
	cnt := newCountingStore(fx.r)
	cnt.fail = func(repo.ChunkID) error { return errInjected }
	d := fx.open(t, cnt, 0, Options{ReadAhead: -1})
	if _, err := d.ReadAt(make([]byte, 10), 0); !errors.Is(err, errInjected) {
		t.Fatalf("got %v, want the store's error", err)
	}
	cnt.mu.Lock()
	cnt.fail = nil
	cnt.mu.Unlock()
	if _, err := d.ReadAt(make([]byte, 10), 0); err != nil {
		t.Fatalf("error was cached: %v", err)
	}
}

func TestDiskContextAndClose(t *testing.T) {
	fx := standardFixture(t)
	cnt := newCountingStore(fx.r)
	cnt.gate = make(chan struct{})
	d := fx.open(t, cnt, 0, Options{ReadAhead: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := d.ReadAtContext(ctx, make([]byte, 10), 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
}

func TestOpenDiskErrors(t *testing.T) {
	fx := standardFixture(t)
	if _, err := OpenDisk(context.Background(), fx.r, fx.m, 1, Options{}); err == nil {
		t.Error("opened a disk the point does not have")
	}
}

// Two disks in one point; each reads its own image.
func TestDiskTwoDisks(t *testing.T) {
	a := genImage(t, t.TempDir(), 11, []int{kRandom, kHole, kRandom}, 0)
	b := genImage(t, t.TempDir(), 12, []int{kText, kRandom}, 4096)
	fx := newFixture(t, a, b)
	for i, img := range fx.images {
		d := fx.open(t, nil, i, Options{})
		got := make([]byte, len(img.data))
		if _, err := d.ReadAt(got, 0); err != nil || !bytes.Equal(got, img.data) {
			t.Errorf("disk %d: %v or bytes differ", i, err)
		}
	}
}

// A 1 TiB sparse disk opens fast and reads at both ends; only the index
// is kept per disk.
func TestDiskLargeSparse(t *testing.T) {
	if testing.Short() {
		t.Skip("backs up a 1 TiB sparse image")
	}
	const size = 1 << 40
	dir := t.TempDir()
	path := filepath.Join(dir, "big.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	head := bytes.Repeat([]byte("head"), cs/4)
	tail := bytes.Repeat([]byte("tail"), 1024)
	if _, err := f.WriteAt(head, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(tail, size-int64(len(tail))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fx := newFixture(t, &image{path: path, size: size, written: []uint64{0, size/cs - 1}})
	start := time.Now()
	d := fx.open(t, nil, 0, Options{})
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("opening took %v", el)
	}
	if d.Size() != size || len(d.Index().Entries) != 2 {
		t.Fatalf("size %d, %d entries", d.Size(), len(d.Index().Entries))
	}
	p := make([]byte, len(tail)+10)
	n, err := d.ReadAt(p, size-int64(len(tail)))
	if n != len(tail) || err != io.EOF || !bytes.Equal(p[:n], tail) {
		t.Fatalf("read at the end: %d, %v", n, err)
	}
	if got := d.Allocated(0, size); len(got) != 3 || !got[1].Zero {
		t.Errorf("allocated %v", got)
	}
	ov, err := OpenOverlay(filepath.Join(dir, "ov"), d, size, OverlayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ov.WriteAt([]byte("guest"), size/2); err != nil {
		t.Fatal(err)
	}
	if err := ov.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "ov", BitmapFile))
	if err != nil || fi.Size() != bitmapHeaderLen+2<<20 {
		t.Errorf("bitmap file %v, %v; want 2 MiB + header", fi.Size(), err)
	}
}
