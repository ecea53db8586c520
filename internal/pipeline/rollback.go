package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
)

// RollbackTarget is an existing disk that a rollback reads and rewrites.
// It must be safe for concurrent use. If it also has a method
// WriteZeroes(ctx, off, length int64) error, zero chunks are written with
// it (which may deallocate them); an error matching errors.ErrUnsupported
// falls back to writing zeros.
type RollbackTarget interface {
	io.ReaderAt
	io.WriterAt
}

type zeroWriter interface {
	WriteZeroes(ctx context.Context, off, length int64) error
}

// RollbackStats counts a rollback's work.
type RollbackStats struct {
	ChunksCompared int   `json:"chunks_compared"`
	ChunksWritten  int   `json:"chunks_written"` // data chunks and zeroed chunks
	ChunksZeroed   int   `json:"chunks_zeroed"`  // of ChunksWritten, zeroed
	BytesWritten   int64 `json:"bytes_written"`  // including zeroed bytes
}

// rollbackJob is one chunk position; data is false for a zero chunk.
type rollbackJob struct {
	n    uint64
	id   repo.ChunkID
	data bool
}

type rollback struct {
	d    *restorefs.Disk
	ix   *repo.Index
	t    RollbackTarget
	o    Options
	zero []byte
	only []uint64 // the chunks to visit (nil: all)

	mu sync.Mutex
	st RollbackStats
}

// RollbackDisk brings t back to disk d, writing only the chunks that
// differ: workers read each chunk of t and compare its ID (or, for zero
// chunks, its bytes) with d's index; a differing chunk is read from d (the
// one read path, Disk.ReadChunk) and written, a zero chunk that is not
// zero on t is zeroed. Memory is 2 × workers × chunk size besides d's
// cache. t must hold at least d.Size() bytes; nothing else may use it
// meanwhile. An interrupted rollback leaves t partly rolled back; running
// it again completes it.
func RollbackDisk(ctx context.Context, d *restorefs.Disk, t RollbackTarget, o Options) (RollbackStats, error) {
	return rollbackChunks(ctx, d, t, nil, o)
}

// Area is a byte range of a disk: [Offset, Offset+Length).
type Area struct {
	Offset, Length int64
}

// RollbackDiskAreas is RollbackDisk limited to the chunks that overlap
// areas (sorted or not, overlapping or not): what changed tracking says
// may differ from the point. Chunks outside them are neither read nor
// written.
func RollbackDiskAreas(ctx context.Context, d *restorefs.Disk, t RollbackTarget, areas []Area, o Options) (RollbackStats, error) {
	return rollbackChunks(ctx, d, t, chunksOf(areas, int64(d.ChunkSize()), d.Index().Chunks()), o)
}

// chunksOf returns the sorted, distinct numbers of the chunks of n that
// overlap areas; never nil, so that no areas mean no chunks.
func chunksOf(areas []Area, cs int64, n uint64) []uint64 {
	out := []uint64{}
	for _, a := range areas {
		if a.Length <= 0 || a.Offset < 0 {
			continue
		}
		for c := uint64(a.Offset / cs); c < n && int64(c)*cs < a.Offset+a.Length; c++ {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// rollbackChunks rolls back the listed chunks (nil: every chunk).
func rollbackChunks(ctx context.Context, d *restorefs.Disk, t RollbackTarget, only []uint64, o Options) (RollbackStats, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ix := d.Index()
	rb := &rollback{d: d, ix: ix, t: t, o: o, zero: make([]byte, ix.ChunkSize), only: only}
	jobs := make(chan rollbackJob, o.workers())
	var wg sync.WaitGroup
	for i := 0; i < o.workers(); i++ {
		wg.Go(func() {
			if err := rb.work(ctx, jobs); err != nil {
				cancel(err)
			}
		})
	}
	rb.dispatch(ctx, jobs)
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		return rb.st, context.Cause(ctx)
	}
	return rb.st, nil
}

// dispatch sends every chunk position (or those of rb.only) in order,
// with its index entry.
func (rb *rollback) dispatch(ctx context.Context, jobs chan<- rollbackJob) {
	entries := rb.ix.Entries
	for i := uint64(0); ; i++ {
		n := i
		switch {
		case rb.only == nil && n >= rb.ix.Chunks():
			return
		case rb.only != nil && i >= uint64(len(rb.only)):
			return
		case rb.only != nil:
			n = rb.only[i]
			entries = entries[sort.Search(len(entries), func(k int) bool { return entries[k].N >= n }):]
		}
		j := rollbackJob{n: n}
		if len(entries) > 0 && entries[0].N == n {
			j.id, j.data = entries[0].ID, true
			entries = entries[1:]
		}
		select {
		case jobs <- j:
		case <-ctx.Done():
			return
		}
	}
}

// work handles jobs until they run out or one fails.
func (rb *rollback) work(ctx context.Context, jobs <-chan rollbackJob) error {
	h := rb.d.NewHasher()
	cur := make([]byte, rb.ix.ChunkSize)
	fetched := make([]byte, rb.ix.ChunkSize)
	for j := range jobs {
		if ctx.Err() != nil {
			return nil
		}
		if err := rb.chunk(ctx, h, j, cur, fetched); err != nil {
			off := int64(j.n) * int64(rb.ix.ChunkSize)
			return fmt.Errorf("rollback chunk %d (offset %d): %w", j.n, off, err)
		}
	}
	return nil
}

// chunk compares one chunk of the target with the point and rewrites it if
// it differs.
func (rb *rollback) chunk(ctx context.Context, h *repo.Hasher, j rollbackJob, cur, fetched []byte) error {
	l := rb.ix.ChunkLen(j.n)
	off := int64(j.n) * int64(rb.ix.ChunkSize)
	p := cur[:l]
	if err := readFull(rb.t, p, off); err != nil {
		return err
	}
	var err error
	switch {
	case !j.data && bytes.Equal(p, rb.zero[:l]):
	case !j.data:
		err = rb.writeZeros(ctx, off, l)
	case h.Sum(p) == j.id:
	default:
		err = rb.rewrite(ctx, j, fetched, off)
	}
	if err != nil {
		return err
	}
	rb.mu.Lock()
	rb.st.ChunksCompared++
	rb.mu.Unlock()
	rb.o.progress(int64(l))
	return nil
}

// rewrite reads chunk j of the point and writes it at off.
func (rb *rollback) rewrite(ctx context.Context, j rollbackJob, dst []byte, off int64) error {
	data, err := rb.d.ReadChunk(ctx, j.n, dst)
	if err != nil {
		return err
	}
	if _, err := rb.t.WriteAt(data, off); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	rb.count(len(data), false)
	return nil
}

// writeZeros zeroes [off, off+l) on the target.
func (rb *rollback) writeZeros(ctx context.Context, off int64, l int) error {
	err := errors.ErrUnsupported
	if zw, ok := rb.t.(zeroWriter); ok {
		err = zw.WriteZeroes(ctx, off, int64(l))
	}
	if errors.Is(err, errors.ErrUnsupported) {
		_, err = rb.t.WriteAt(rb.zero[:l], off)
	}
	if err != nil {
		return fmt.Errorf("write zeros: %w", err)
	}
	rb.count(l, true)
	return nil
}

func (rb *rollback) count(l int, zero bool) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	rb.st.ChunksWritten++
	rb.st.BytesWritten += int64(l)
	if zero {
		rb.st.ChunksZeroed++
	}
}

// readFull reads len(p) bytes at off; a short read is an error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read target: %d of %d bytes: %w", n, len(p), err)
}

// RollbackFile is an existing raw image or block device opened for a
// rollback. It implements RollbackTarget; zeroing punches holes in regular
// files.
type RollbackFile struct {
	f      *os.File
	device bool
}

// OpenRollbackFile opens an existing raw image or block device for a
// rollback to a disk of the given size. A regular file must have exactly
// that size; a block device must be at least that large (bytes past the
// disk are left alone).
func OpenRollbackFile(path string, size int64) (*RollbackFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s for rollback: %w", path, err)
	}
	t := &RollbackFile{f: f}
	if err := t.checkSize(size); err != nil {
		f.Close()
		return nil, err
	}
	return t, nil
}

func (t *RollbackFile) checkSize(size int64) error {
	fi, err := t.f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", t.f.Name(), err)
	}
	switch {
	case fi.Mode()&os.ModeDevice != 0:
		t.device = true
		devSize, err := t.f.Seek(0, io.SeekEnd)
		if err != nil {
			return fmt.Errorf("size of %s: %w", t.f.Name(), err)
		}
		if devSize < size {
			return fmt.Errorf("%s holds %d bytes, the disk needs %d", t.f.Name(), devSize, size)
		}
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is neither a regular file nor a block device", t.f.Name())
	case fi.Size() != size:
		return fmt.Errorf("%s holds %d bytes, the disk has %d: a rollback needs an image of the same size", t.f.Name(), fi.Size(), size)
	}
	return nil
}

// ReadAt reads from the file.
func (t *RollbackFile) ReadAt(p []byte, off int64) (int, error) { return t.f.ReadAt(p, off) }

// WriteAt writes to the file.
func (t *RollbackFile) WriteAt(p []byte, off int64) (int, error) { return t.f.WriteAt(p, off) }

// WriteZeroes punches a hole into a regular file; for block devices (and
// file systems without hole punching) it returns errors.ErrUnsupported.
func (t *RollbackFile) WriteZeroes(_ context.Context, off, length int64) error {
	if t.device {
		return errors.ErrUnsupported
	}
	err := unix.Fallocate(int(t.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return errors.ErrUnsupported
	}
	return err
}

// Close syncs the data to stable storage and closes the file.
func (t *RollbackFile) Close() error {
	if err := t.f.Sync(); err != nil {
		t.f.Close()
		return fmt.Errorf("sync %s: %w", t.f.Name(), err)
	}
	return t.f.Close()
}

// Abort closes the file after a failed rollback.
func (t *RollbackFile) Abort() { t.f.Close() }
