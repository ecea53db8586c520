package restorefs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Overlay file names inside its directory.
const (
	RedoFile   = "redo.img"
	BitmapFile = "redo.bitmap"
)

// OverlayOptions tune an Overlay.
type OverlayOptions struct {
	// BlockSize is the unit of redo tracking: a power of two from 4 KiB to
	// 64 MiB. 0: the existing bitmap's block size when reopening,
	// DefaultBlockSize (64 KiB) when creating.
	BlockSize int
}

// Overlay keeps a disk's writes apart from its base: a sparse redo file
// plus a persistent bitmap in one directory. It is safe for concurrent use.
type Overlay struct {
	dir   string
	base  io.ReaderAt
	size  int64
	bs    int64
	nblk  uint64
	redo  *os.File
	words []atomic.Uint64 // bit b: block b is in redo.img
	dirty atomic.Bool     // a bit was set since the last persisted bitmap
	locks [64]sync.Mutex  // block b: locks[b%64], taken in index order
	bufs  sync.Pool       // *[]byte of one block

	life    sync.RWMutex // operations hold it shared, Close exclusively
	closed  bool
	flushMu sync.Mutex
}

// OpenOverlay creates the overlay in dir (creating dir) or reopens the one
// there, whose redo data and bitmap then carry on. A bitmap that does not
// match size or o.BlockSize, or is damaged, is refused (ErrBadBitmap).
func OpenOverlay(dir string, base io.ReaderAt, size int64, o OverlayOptions) (*Overlay, error) {
	if size < 0 {
		return nil, fmt.Errorf("overlay: negative disk size %d", size)
	}
	if o.BlockSize != 0 {
		if err := validBlockSize(o.BlockSize); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	redoPath := filepath.Join(dir, RedoFile)
	f, err := os.OpenFile(redoPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("overlay: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrOverlayInUse)
		}
		return nil, fmt.Errorf("overlay: lock %s: %w", redoPath, err)
	}
	ov := &Overlay{dir: dir, base: base, size: size, redo: f}
	if err := ov.load(o.BlockSize); err != nil {
		f.Close()
		return nil, err
	}
	bs := int(ov.bs)
	ov.bufs.New = func() any { b := make([]byte, bs); return &b }
	return ov, nil
}

// load reads the bitmap, or creates it for a new overlay, and checks
// redo.img against it.
func (ov *Overlay) load(wantBS int) error {
	st, err := ov.redo.Stat()
	if err != nil {
		return fmt.Errorf("overlay: %w", err)
	}
	bmPath := filepath.Join(ov.dir, BitmapFile)
	b, err := os.ReadFile(bmPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if st.Size() != 0 {
			return fmt.Errorf("%s: %w: %s exists without a bitmap; its writes cannot be told apart (move the directory away to start afresh)", ov.dir, ErrBadBitmap, RedoFile)
		}
		if wantBS == 0 {
			wantBS = DefaultBlockSize
		}
		ov.setGeometry(wantBS)
		// The bitmap first: a redo.img without one is refused.
		if err := ov.persist(ov.snapshot()); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("overlay: %w", err)
	default:
		bs, size, bm, err := parseBitmap(b)
		if err != nil {
			return fmt.Errorf("%s: %w", bmPath, err)
		}
		if size != ov.size || wantBS != 0 && bs != wantBS {
			return fmt.Errorf("%s: %w: it is for a disk of %d bytes in blocks of %d, not %d bytes in blocks of %d",
				bmPath, ErrBadBitmap, size, bs, ov.size, max(wantBS, bs))
		}
		ov.setGeometry(bs)
		ov.restore(bm)
		if st.Size() != ov.size && (st.Size() != 0 || ov.any()) {
			return fmt.Errorf("%s: %w: %s has %d bytes, the disk %d", bmPath, ErrBadBitmap, RedoFile, st.Size(), ov.size)
		}
	}
	if st.Size() != ov.size {
		if err := ov.redo.Truncate(ov.size); err != nil {
			return fmt.Errorf("overlay: %w", err)
		}
	}
	return nil
}

func (ov *Overlay) setGeometry(bs int) {
	ov.bs = int64(bs)
	ov.nblk = blockCount(ov.size, bs)
	ov.words = make([]atomic.Uint64, (ov.nblk+63)/64)
}

// Size returns the disk's size.
func (ov *Overlay) Size() int64 { return ov.size }

// BlockSize returns the overlay's block size.
func (ov *Overlay) BlockSize() int { return int(ov.bs) }

func (ov *Overlay) isSet(b uint64) bool {
	return ov.words[b/64].Load()&(1<<(b%64)) != 0
}

func (ov *Overlay) set(b uint64) {
	if m := uint64(1) << (b % 64); ov.words[b/64].Or(m)&m == 0 {
		ov.dirty.Store(true)
	}
}

// any reports whether a block is written.
func (ov *Overlay) any() bool {
	for i := range ov.words {
		if ov.words[i].Load() != 0 {
			return true
		}
	}
	return false
}

// snapshot returns the bitmap in file order (block b: byte b/8, bit b%8).
func (ov *Overlay) snapshot() []byte {
	bm := make([]byte, bitmapLen(ov.size, int(ov.bs)))
	for i := range ov.words {
		w := ov.words[i].Load()
		for j := 0; j < 8 && i*8+j < len(bm); j++ {
			bm[i*8+j] = byte(w >> (8 * j))
		}
	}
	return bm
}

// restore loads a bitmap in file order.
func (ov *Overlay) restore(bm []byte) {
	for i, c := range bm {
		ov.words[i/8].Or(uint64(c) << (8 * (i % 8)))
	}
}

// persist replaces redo.bitmap atomically: temporary file, fsync, rename,
// fsync of the directory.
func (ov *Overlay) persist(bm []byte) error {
	final := filepath.Join(ov.dir, BitmapFile)
	tmp := final + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("overlay: write bitmap: %w", err)
	}
	_, err = f.Write(marshalBitmap(int(ov.bs), ov.size, bm))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err == nil {
		err = syncDir(ov.dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("overlay: write bitmap %s: %w", final, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// begin enters an operation; end leaves it.
func (ov *Overlay) begin() error {
	ov.life.RLock()
	if ov.closed {
		ov.life.RUnlock()
		return ErrClosed
	}
	return nil
}

func (ov *Overlay) end() { ov.life.RUnlock() }

// Flush makes every write made before it durable: it takes a snapshot of
// the bitmap, fsyncs redo.img and, if the bitmap changed, replaces
// redo.bitmap atomically. See the package documentation.
func (ov *Overlay) Flush() error {
	if err := ov.begin(); err != nil {
		return err
	}
	defer ov.end()
	return ov.flush()
}

func (ov *Overlay) flush() error {
	ov.flushMu.Lock()
	defer ov.flushMu.Unlock()
	// Snapshot before the fsync: every bit in it was set after its data
	// was written, so the fsync makes that data durable.
	changed := ov.dirty.Swap(false)
	var bm []byte
	if changed {
		bm = ov.snapshot()
	}
	if err := ov.redo.Sync(); err != nil {
		ov.dirty.Store(changed || ov.dirty.Load())
		return fmt.Errorf("overlay: sync %s: %w", RedoFile, err)
	}
	if changed {
		if err := ov.persist(bm); err != nil {
			ov.dirty.Store(true)
			return err
		}
	}
	return nil
}

// Close flushes and closes the overlay (releasing its lock).
func (ov *Overlay) Close() error {
	ov.life.Lock()
	defer ov.life.Unlock()
	if ov.closed {
		return nil
	}
	ov.closed = true
	err := ov.flush()
	if cerr := ov.redo.Close(); err == nil {
		err = cerr
	}
	return err
}

// Written returns the written ranges, sorted and coalesced (block
// granularity, the last block clipped to the disk's size): with the base
// they make the disk, for migrating a running recovery to production.
func (ov *Overlay) Written() []Extent {
	var out []Extent
	for i := range ov.words {
		w := ov.words[i].Load()
		for w != 0 {
			j := bits.TrailingZeros64(w)
			w &^= 1 << j
			b := uint64(i)*64 + uint64(j)
			lo := int64(b) * ov.bs
			hi := min(lo+ov.bs, ov.size)
			if k := len(out) - 1; k >= 0 && out[k].End() == lo {
				out[k].Length = hi - out[k].Offset
				continue
			}
			out = append(out, Extent{Offset: lo, Length: hi - lo})
		}
	}
	return out
}
