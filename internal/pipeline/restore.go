package pipeline

import (
	"context"
	"fmt"
	"io"

	"github.com/holdfast-backup/holdfast/internal/restorefs"
)

// RestoreTarget is where a disk is restored to.
type RestoreTarget struct {
	W io.WriterAt
	// WriteZeros writes zero chunks explicitly (block devices, existing
	// disks); otherwise they are left as holes of a freshly truncated file.
	WriteZeros bool
}

// RestoreStats counts a restore's work.
type RestoreStats struct {
	BytesWritten int64 `json:"bytes_written"`
	BytesZero    int64 `json:"bytes_zero"`
	Chunks       int   `json:"chunks"`
}

// RestoreDisk writes disk d to t. It reads through restorefs, the one read
// path: workers fetch chunks ahead in parallel (Disk.Stream) and one writer
// writes them strictly in disk order; at most 2 × workers chunks are in
// flight besides d's cache (open d with restorefs.StreamCacheBytes).
func RestoreDisk(ctx context.Context, d *restorefs.Disk, t RestoreTarget, o Options) (RestoreStats, error) {
	ix := d.Index()
	w := restoreWriter{t: t, chunkSize: int64(ix.ChunkSize), chunkLen: ix.ChunkLen, o: o}
	if t.WriteZeros {
		w.zero = make([]byte, ix.ChunkSize)
	}
	err := d.Stream(ctx, o.workers(), w.chunk)
	if err == nil {
		err = w.zeros(ix.Chunks())
	}
	return w.st, err
}

// restoreWriter writes a stream of data chunks in disk order and accounts
// for the zero chunks between them.
type restoreWriter struct {
	t         RestoreTarget
	chunkSize int64
	chunkLen  func(n uint64) int
	o         Options
	zero      []byte // WriteZeros: a chunk of zeros
	next      uint64 // first chunk not yet accounted for
	st        RestoreStats
}

// chunk writes data chunk n, after the zero chunks before it.
func (w *restoreWriter) chunk(n uint64, data []byte) error {
	if err := w.zeros(n); err != nil {
		return err
	}
	off := int64(n) * w.chunkSize
	if _, err := w.t.W.WriteAt(data, off); err != nil {
		return fmt.Errorf("write at offset %d: %w", off, err)
	}
	w.st.BytesWritten += int64(len(data))
	w.st.Chunks++
	w.next = n + 1
	w.o.progress(int64(len(data)))
	return nil
}

// zeros accounts for (and, on targets that need it, writes) the zero
// chunks before chunk upto.
func (w *restoreWriter) zeros(upto uint64) error {
	for ; w.next < upto; w.next++ {
		l := w.chunkLen(w.next)
		if w.zero != nil {
			off := int64(w.next) * w.chunkSize
			if _, err := w.t.W.WriteAt(w.zero[:l], off); err != nil {
				return fmt.Errorf("write zeros at %d: %w", off, err)
			}
		}
		w.st.BytesZero += int64(l)
		w.o.progress(int64(l))
	}
	return nil
}
