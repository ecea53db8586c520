package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// flatExtent is a byte range of a file or block device read as is: a raw
// image, a block device, or a VMDK FLAT extent.
type flatExtent struct {
	f      *os.File
	offset int64 // where the extent starts in f
	// sparse is set when f is a regular file whose holes can be found with
	// SEEK_DATA/SEEK_HOLE; a block device is reported as fully allocated.
	sparse bool
}

func (e *flatExtent) readAt(p []byte, off int64) error {
	n, err := e.f.ReadAt(p, e.offset+off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF // the file shrank under us
	}
	return fmt.Errorf("%s at %d: %w", e.f.Name(), e.offset+off, err)
}

func (e *flatExtent) allocated(ctx context.Context, length, base int64, add func(source.Extent)) error {
	if !e.sparse {
		add(source.Extent{Offset: base, Length: length})
		return nil
	}
	return dataRanges(ctx, e.f, e.offset, e.offset+length, func(off, n int64) {
		add(source.Extent{Offset: base + off - e.offset, Length: n})
	})
}

// dataRanges reports the data ranges of f within [start,end) using
// SEEK_DATA/SEEK_HOLE, so holes are never read. Where the file system cannot
// tell, the rest of the range is reported as data.
//
// lseek moves the shared file offset, which is harmless: every read uses
// pread (ReadAt) and every lseek here is absolute.
func dataRanges(ctx context.Context, f *os.File, start, end int64, add func(off, n int64)) error {
	for off := start; off < end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		data, err := f.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			return nil // only a hole remains up to the end of the file
		}
		if err != nil {
			add(off, end-off) // SEEK_DATA unsupported: assume data
			return nil
		}
		if data >= end {
			return nil
		}
		hole, err := f.Seek(data, unix.SEEK_HOLE)
		if err != nil || hole > end {
			hole = end
		}
		if hole <= data {
			add(data, end-data) // inconsistent answer: be conservative
			return nil
		}
		add(data, hole-data)
		off = hole
	}
	return nil
}

// openRaw makes a raw disk of a regular file or a block device.
func openRaw(f *os.File, path string, st os.FileInfo) (*disk, error) {
	if isBlockDevice(st) {
		size, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			return nil, fmt.Errorf("block device %s: size: %w", path, err)
		}
		return singlePartDisk("block", path, size, &flatExtent{f: f})
	}
	return singlePartDisk("raw", path, st.Size(), &flatExtent{f: f, sparse: true})
}

func singlePartDisk(format, path string, size int64, ext extent) (*disk, error) {
	d := &disk{info: source.Info{Format: format, Location: path}}
	if err := d.addPart(size, ext); err != nil {
		return nil, fmt.Errorf("%s %s: %w", format, path, err)
	}
	return d, nil
}

func isBlockDevice(st os.FileInfo) bool {
	m := st.Mode()
	return m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0
}
