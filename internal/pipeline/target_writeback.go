package pipeline

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// writebackSpan is how many bytes a restore writes before it asks the
// kernel to start writing them back.
const writebackSpan = 16 << 20

// writeback is a raw target's writer: it starts the write-back of what the
// restore wrote every writebackSpan bytes (sync_file_range, without
// waiting), so the disk writes while later chunks are still being fetched
// and the fsync at the end has little left to do. It is a hint: an error
// stops the hints, and the final fsync reports any failed write.
type writeback struct {
	w       io.WriterAt
	kick    func(off, n int64) error // starts write-back of [off, off+n)
	lo, hi  int64                    // range written since the last kick
	stopped bool                     // hints stopped
}

func newWriteback(f *os.File) *writeback {
	fd := int(f.Fd())
	return &writeback{w: f, lo: -1, kick: func(off, n int64) error {
		return unix.SyncFileRange(fd, off, n, unix.SYNC_FILE_RANGE_WRITE)
	}}
}

// newImageWriteback starts the write-back of the whole image file f every
// writebackSpan bytes written through w (qemu-nbd writing a qcow2 image:
// its offsets in the file are not the disk's, and the page cache it
// dirties is the file's, whichever process asks), so qemu-nbd's flush at
// the end has little left to do.
func newImageWriteback(w io.WriterAt, f *os.File) *writeback {
	fd := int(f.Fd())
	return &writeback{w: w, lo: -1, kick: func(int64, int64) error {
		return unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}}
}

// WriteAt writes p at off; a restore's writes come from one goroutine.
func (w *writeback) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.w.WriteAt(p, off)
	if err != nil || w.stopped {
		return n, err
	}
	end := off + int64(n)
	if w.lo < 0 || off < w.lo {
		w.lo = off
	}
	w.hi = max(w.hi, end)
	if w.hi-w.lo >= writebackSpan {
		if w.kick(w.lo, w.hi-w.lo) != nil {
			w.stopped = true
		}
		w.lo, w.hi = -1, 0
	}
	return n, nil
}
