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
	"slices"
	"sync"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// memBase is an in-memory base disk that counts its reads.
type memBase struct {
	data []byte
	mu   sync.Mutex
	read int64
}

func (b *memBase) ReadAt(p []byte, off int64) (int, error) {
	b.mu.Lock()
	b.read += int64(len(p))
	b.mu.Unlock()
	if off >= int64(len(b.data)) {
		return 0, io.EOF
	}
	n := copy(p, b.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	fillRandom(rand.New(rand.NewPCG(seed, 1)), b)
	return b
}

func openOverlay(t testing.TB, dir string, base io.ReaderAt, size int64, o OverlayOptions) *Overlay {
	t.Helper()
	ov, err := OpenOverlay(dir, base, size, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ov.Close() })
	return ov
}

// checkAll compares the whole overlay with want.
func checkAll(t testing.TB, ov *Overlay, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if n, err := ov.ReadAt(got, 0); n != len(want) || err != nil {
		t.Fatalf("read all: %d, %v", n, err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("byte %d (block %d) is %#x, want %#x", i, i/4096, got[i], want[i])
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// op is one change made to an overlay and to the model.
type op struct {
	off, n int64
	zero   bool
	seed   uint64
}

func TestOverlayWrites(t *testing.T) {
	const bs = 4096
	const size = 20*bs + 1234 // a partial last block
	tests := []struct {
		name    string
		ops     []op
		written []Extent
	}{
		{"nothing written", nil, nil},
		{"whole block", []op{{off: 2 * bs, n: bs, seed: 1}}, []Extent{{Offset: 2 * bs, Length: bs}}},
		{"partial block", []op{{off: 3*bs + 100, n: 10, seed: 2}}, []Extent{{Offset: 3 * bs, Length: bs}}},
		{"across blocks", []op{{off: 4*bs - 7, n: 3*bs + 20, seed: 3}}, []Extent{{Offset: 3 * bs, Length: 5 * bs}}},
		{"two partial writes in one block", []op{{off: 5 * bs, n: 100, seed: 4}, {off: 5*bs + 200, n: 100, seed: 5}}, []Extent{{Offset: 5 * bs, Length: bs}}},
		{"overwrite", []op{{off: bs, n: 2 * bs, seed: 6}, {off: bs + 10, n: 50, seed: 7}}, []Extent{{Offset: bs, Length: 2 * bs}}},
		{"last partial block", []op{{off: size - 10, n: 10, seed: 8}}, []Extent{{Offset: 20 * bs, Length: 1234}}},
		{"whole disk", []op{{off: 0, n: size, seed: 9}}, []Extent{{Offset: 0, Length: size}}},
		{"zeroes whole blocks", []op{{off: 6 * bs, n: 2 * bs, zero: true}}, []Extent{{Offset: 6 * bs, Length: 2 * bs}}},
		{"zeroes partial", []op{{off: 6*bs + 5, n: 2 * bs, zero: true}}, []Extent{{Offset: 6 * bs, Length: 3 * bs}}},
		{"zeroes over written data", []op{{off: 0, n: 4 * bs, seed: 10}, {off: bs + 3, n: bs, zero: true}}, []Extent{{Offset: 0, Length: 4 * bs}}},
		{"zeroes to the end", []op{{off: 19*bs + 1, n: size - 19*bs - 1, zero: true}}, []Extent{{Offset: 19 * bs, Length: bs + 1234}}},
		{"separate extents", []op{{off: 0, n: 1, seed: 11}, {off: 10 * bs, n: 1, seed: 12}}, []Extent{{Offset: 0, Length: bs}, {Offset: 10 * bs, Length: bs}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := &memBase{data: randomBytes(99, size)}
			model := bytes.Clone(base.data)
			dir := filepath.Join(t.TempDir(), "ov")
			ov := openOverlay(t, dir, base, size, OverlayOptions{BlockSize: bs})
			for _, o := range tt.ops {
				if o.zero {
					if err := ov.WriteZeroes(o.off, o.n); err != nil {
						t.Fatal(err)
					}
					clear(model[o.off : o.off+o.n])
					continue
				}
				p := randomBytes(o.seed, int(o.n))
				if n, err := ov.WriteAt(p, o.off); n != len(p) || err != nil {
					t.Fatalf("write: %d, %v", n, err)
				}
				copy(model[o.off:], p)
			}
			checkAll(t, ov, model)
			if got := ov.Written(); fmt.Sprint(got) != fmt.Sprint(tt.written) {
				t.Errorf("written %v, want %v", got, tt.written)
			}
			// Unwritten areas still come from the base, written ones never do.
			base.mu.Lock()
			base.read = 0
			base.mu.Unlock()
			checkAll(t, ov, model)
			var unwritten int64 = size
			for _, e := range tt.written {
				unwritten -= e.Length
			}
			if base.read != unwritten {
				t.Errorf("read %d bytes from the base, want %d", base.read, unwritten)
			}
			// Close, reopen: the same content.
			if err := ov.Close(); err != nil {
				t.Fatal(err)
			}
			ov2 := openOverlay(t, dir, base, size, OverlayOptions{})
			checkAll(t, ov2, model)
			if ov2.BlockSize() != bs {
				t.Errorf("reopened with block size %d, want the stored %d", ov2.BlockSize(), bs)
			}
		})
	}
}

func TestOverlayBounds(t *testing.T) {
	const size = 3*DefaultBlockSize + 7
	base := &memBase{data: randomBytes(1, size)}
	ov := openOverlay(t, t.TempDir(), base, size, OverlayOptions{})
	for _, tt := range []struct {
		off, n int64
	}{{size - 3, 4}, {size, 1}, {-1, 2}, {1 << 62, 1}} {
		if _, err := ov.WriteAt(make([]byte, tt.n), tt.off); !errors.Is(err, ErrBeyondEnd) {
			t.Errorf("WriteAt(%d, %d): %v, want ErrBeyondEnd", tt.n, tt.off, err)
		}
		if err := ov.WriteZeroes(tt.off, tt.n); !errors.Is(err, ErrBeyondEnd) {
			t.Errorf("WriteZeroes(%d, %d): %v, want ErrBeyondEnd", tt.off, tt.n, err)
		}
	}
	if len(ov.Written()) != 0 {
		t.Error("a refused write left data")
	}
	p := make([]byte, 10)
	if n, err := ov.ReadAt(p, size-3); n != 3 || err != io.EOF || !bytes.Equal(p[:3], base.data[size-3:]) {
		t.Errorf("read across the end: %d, %v", n, err)
	}
	if n, err := ov.ReadAt(p, size); n != 0 || err != io.EOF {
		t.Errorf("read at the end: %d, %v", n, err)
	}
	if ov.Size() != size {
		t.Errorf("size %d", ov.Size())
	}
	for _, bs := range []int{1000, 4095, 3 * 4096, 128 << 20} {
		if _, err := OpenOverlay(t.TempDir(), base, size, OverlayOptions{BlockSize: bs}); err == nil {
			t.Errorf("block size %d accepted", bs)
		}
	}
}

// After Flush, the files on disk hold every write made before it: a copy
// of the directory taken then (as a crash would leave it) reopens with
// them.
func TestOverlayFlushSurvivesCrash(t *testing.T) {
	const size = 50 * 4096
	base := &memBase{data: randomBytes(2, size)}
	dir := filepath.Join(t.TempDir(), "ov")
	ov := openOverlay(t, dir, base, size, OverlayOptions{BlockSize: 4096})
	model := bytes.Clone(base.data)
	write := func(off int64, p []byte) {
		if _, err := ov.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
		copy(model[off:], p)
	}
	write(100, randomBytes(3, 5000))
	write(30*4096, randomBytes(4, 3*4096))
	if err := ov.WriteZeroes(40*4096+10, 4096); err != nil {
		t.Fatal(err)
	}
	clear(model[40*4096+10 : 41*4096+10])
	if err := ov.Flush(); err != nil {
		t.Fatal(err)
	}
	crash := filepath.Join(t.TempDir(), "crashed")
	copyDir(t, dir, crash)
	ov2 := openOverlay(t, crash, base, size, OverlayOptions{BlockSize: 4096})
	checkAll(t, ov2, model)
	if fmt.Sprint(ov2.Written()) != fmt.Sprint(ov.Written()) {
		t.Errorf("written %v after reopen, want %v", ov2.Written(), ov.Written())
	}
	// A second Flush with nothing new keeps the bitmap file as it is.
	before, _ := os.ReadFile(filepath.Join(dir, BitmapFile))
	write(101, []byte("rewrite of a written block"))
	if err := ov.Flush(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, BitmapFile))
	if !bytes.Equal(before, after) {
		t.Error("bitmap rewritten though no block was newly written")
	}
	// The live overlay is locked against a second opener.
	if _, err := OpenOverlay(dir, base, size, OverlayOptions{}); !errors.Is(err, ErrOverlayInUse) {
		t.Errorf("second open: %v, want ErrOverlayInUse", err)
	}
	if err := ov.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := ov.WriteAt([]byte{1}, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("write after close: %v", err)
	}
	if err := ov.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("flush after close: %v", err)
	}
}

func copyDir(t testing.TB, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{RedoFile, BitmapFile} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOverlayBadBitmapRefused(t *testing.T) {
	const size = 10*4096 + 5
	base := &memBase{data: randomBytes(5, size)}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
		size   int64
		bs     int
	}{
		{"flipped bit", func(t *testing.T, dir string) { patch(t, dir, bitmapHeaderLen, 0x02) }, size, 0},
		{"flipped header", func(t *testing.T, dir string) { patch(t, dir, 13, 0x01) }, size, 0},
		{"bad magic", func(t *testing.T, dir string) { patch(t, dir, 0, 0x20) }, size, 0},
		{"truncated", func(t *testing.T, dir string) {
			p := filepath.Join(dir, BitmapFile)
			b, _ := os.ReadFile(p)
			_ = os.WriteFile(p, b[:len(b)-1], 0o600)
		}, size, 0},
		{"empty file", func(t *testing.T, dir string) { _ = os.WriteFile(filepath.Join(dir, BitmapFile), nil, 0o600) }, size, 0},
		{"missing bitmap", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, BitmapFile)) }, size, 0},
		{"other disk size", func(t *testing.T, dir string) {}, size + 4096, 0},
		{"other block size", func(t *testing.T, dir string) {}, size, 8192},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ov")
			ov, err := OpenOverlay(dir, base, size, OverlayOptions{BlockSize: 4096})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ov.WriteAt([]byte("data"), 4096); err != nil {
				t.Fatal(err)
			}
			if err := ov.Close(); err != nil {
				t.Fatal(err)
			}
			bm, _ := os.ReadFile(filepath.Join(dir, BitmapFile))
			tt.damage(t, dir)
			damaged, _ := os.ReadFile(filepath.Join(dir, BitmapFile))
			_, err = OpenOverlay(dir, base, tt.size, OverlayOptions{BlockSize: tt.bs})
			if !errors.Is(err, ErrBadBitmap) {
				t.Fatalf("opened: %v, want ErrBadBitmap", err)
			}
			t.Log(err)
			// Never reset: the files are as they were.
			if now, _ := os.ReadFile(filepath.Join(dir, BitmapFile)); !bytes.Equal(now, damaged) {
				t.Error("the bitmap file was changed")
			}
			_ = bm
		})
	}
}

func patch(t *testing.T, dir string, off int, mask byte) {
	t.Helper()
	p := filepath.Join(dir, BitmapFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= mask
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Concurrent writers to different bytes of the same blocks lose nothing.
func TestOverlayConcurrentWrites(t *testing.T) {
	const bs = 4096
	const size = 16 * bs
	base := &memBase{data: randomBytes(6, size)}
	ov := openOverlay(t, t.TempDir(), base, size, OverlayOptions{BlockSize: bs})
	model := bytes.Clone(base.data)
	const writers = 8
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		// writer g owns bytes with (off/64)%writers == g.
		for off := int64(g * 64); off < size; off += writers * 64 {
			copy(model[off:off+64], bytes.Repeat([]byte{byte(g + 1)}, 64))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := bytes.Repeat([]byte{byte(g + 1)}, 64)
			for off := int64(g * 64); off < size; off += writers * 64 {
				if _, err := ov.WriteAt(p, off); err != nil {
					t.Error(err)
					return
				}
				if _, err := ov.ReadAt(make([]byte, 100), off); err != nil && err != io.EOF {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	checkAll(t, ov, model)
}

// The whole instant-recovery stack on a real repository: an overlay on a
// restore point's disk; the repository is unchanged afterwards.
func TestOverlayOnDiskLeavesRepositoryUnchanged(t *testing.T) {
	fx := standardFixture(t)
	img := fx.images[0].data
	before := fileState(t, fx.root)
	d := fx.open(t, nil, 0, Options{CacheBytes: 8 * cs})
	dir := filepath.Join(t.TempDir(), "redo")
	ov := openOverlay(t, dir, d, d.Size(), OverlayOptions{})
	model := bytes.Clone(img)
	rng := rand.New(rand.NewPCG(8, 8))
	for i := 0; i < 100; i++ {
		off := rng.Int64N(int64(len(img)) - 5000)
		p := randomBytes(uint64(i), rng.IntN(5000)+1)
		if i%7 == 0 {
			if err := ov.WriteZeroes(off, int64(len(p))); err != nil {
				t.Fatal(err)
			}
			clear(model[off : off+int64(len(p))])
			continue
		}
		if _, err := ov.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
		copy(model[off:], p)
	}
	checkAll(t, ov, model)
	if err := ov.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// The disk itself still reads the backup.
	d2 := fx.open(t, nil, 0, Options{})
	got := make([]byte, len(img))
	if _, err := d2.ReadAt(got, 0); err != nil || !bytes.Equal(got, img) {
		t.Fatalf("disk after overlay writes: %v or bytes differ", err)
	}
	// Reopened overlay on a fresh disk: the writes are there.
	ov2 := openOverlay(t, dir, d2, d2.Size(), OverlayOptions{})
	checkAll(t, ov2, model)
	if after := fileState(t, fx.root); !slices.Equal(before, after) {
		t.Errorf("repository files changed:\nbefore %v\nafter  %v", before, after)
	}
	res, err := fx.r.Verify(context.Background(), repo.VerifyOptions{ReadData: true})
	if err != nil || len(res.Problems) != 0 {
		t.Fatalf("verify: %v, problems %v", err, res.Problems)
	}
}
