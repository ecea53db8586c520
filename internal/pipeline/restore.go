package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/holdfast-backup/holdfast/internal/restorefs"
)

// RestoreTarget is where a disk is restored to.
type RestoreTarget struct {
	W io.WriterAt
	// WriteZeros writes zero chunks explicitly (block devices, existing
	// disks). Otherwise the target is fresh (a truncated file, a new qcow2
	// image) and reads as zeros wherever nothing is written, so zero
	// chunks and the zero blocks inside data chunks (holeBlock, aligned)
	// are left as holes.
	WriteZeros bool
}

// restoreFetchers is the least number of chunks a full restore fetches in
// parallel by default: a repository read cold is one file per chunk, so the
// fetches wait on the disk more than on the CPU and more of them in flight
// keep it busy (on 2 vCPUs a cold 2 GiB restore took ≈ 2 s with 16 where 4
// took ≈ 3.5 s). Their window stays bounded by the Disk's cache.
const restoreFetchers = 16

// holeBlock is the granule of the zero blocks a restore to a fresh target
// leaves unwritten: a file system block, so a skipped block stays a hole.
const holeBlock = 4096

// RestoreStats counts a restore's work: BytesZero are the bytes of zero
// chunks and, on a fresh target, of the zero blocks of data chunks, left
// as holes; BytesWritten the rest.
type RestoreStats struct {
	BytesWritten int64 `json:"bytes_written"`
	BytesZero    int64 `json:"bytes_zero"`
	Chunks       int   `json:"chunks"`
}

// RestoreDisk writes disk d to t. It reads through restorefs, the one read
// path: workers (by default at least restoreFetchers) fetch chunks ahead
// in parallel (Disk.Stream) and one writer writes them strictly in disk
// order; at most 2 × workers chunks are in flight, and no more than d's
// cache holds (open d with restorefs.StreamCacheBytes).
func RestoreDisk(ctx context.Context, d *restorefs.Disk, t RestoreTarget, o Options) (RestoreStats, error) {
	ix := d.Index()
	w := restoreWriter{t: t, chunkSize: int64(ix.ChunkSize), chunkLen: ix.ChunkLen, o: o}
	if t.WriteZeros {
		w.zero = make([]byte, ix.ChunkSize)
	}
	workers := o.Workers
	if workers <= 0 {
		workers = max(o.workers(), restoreFetchers)
	}
	err := d.Stream(ctx, workers, w.chunk)
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

// chunk writes data chunk n, after the zero chunks before it. On a fresh
// target it skips the chunk's zero blocks and writes each run of other
// blocks at once.
func (w *restoreWriter) chunk(n uint64, data []byte) error {
	if err := w.zeros(n); err != nil {
		return err
	}
	off := int64(n) * w.chunkSize
	if w.zero != nil {
		if err := w.write(data, off); err != nil {
			return err
		}
	} else {
		written := w.st.BytesWritten
		for lo, hi := range dataRuns(data, off) {
			if err := w.write(data[lo:hi], off+int64(lo)); err != nil {
				return err
			}
		}
		w.st.BytesZero += int64(len(data)) - (w.st.BytesWritten - written)
	}
	w.st.Chunks++
	w.next = n + 1
	w.o.progress(int64(len(data)))
	return nil
}

// write writes p at off and accounts for it.
func (w *restoreWriter) write(p []byte, off int64) error {
	if _, err := w.t.W.WriteAt(p, off); err != nil {
		return fmt.Errorf("write at offset %d: %w", off, err)
	}
	w.st.BytesWritten += int64(len(p))
	return nil
}

// dataRuns yields the runs [lo, hi) of data, which lies at offset off of
// the disk, that hold a non-zero byte, in holeBlock blocks aligned on the
// disk: the zero blocks between them can stay holes.
func dataRuns(data []byte, off int64) func(yield func(lo, hi int) bool) {
	return func(yield func(lo, hi int) bool) {
		var zero [holeBlock]byte
		start := -1 // start of the current run; -1: none
		for lo := 0; lo < len(data); {
			hi := min(lo+holeBlock-int((off+int64(lo))%holeBlock), len(data))
			if !bytes.Equal(data[lo:hi], zero[:hi-lo]) {
				if start < 0 {
					start = lo
				}
			} else if start >= 0 {
				if !yield(start, lo) {
					return
				}
				start = -1
			}
			lo = hi
		}
		if start >= 0 {
			yield(start, len(data))
		}
	}
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
