package file

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/lima-vm/go-qcow2reader"
	"github.com/lima-vm/go-qcow2reader/image"
	"github.com/lima-vm/go-qcow2reader/image/qcow2"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// qcow2Disk reads a qcow2 image with go-qcow2reader.
//
// Concurrency: the library's ReadAt keeps no per-call state in the image;
// its only shared mutable state is the L2 table cache, which is guarded by a
// mutex, and the file is read with pread. ReadAt is therefore safe for
// concurrent use without a lock here (TestQcow2ConcurrentReads checks it
// under the race detector).
//
// Allocated does not use the library's Extent: it walks the L1/L2 tables of
// every image of the backing chain itself (the library's Extent reports the
// status of only the first backing-file cluster for a whole overlay cluster
// when the backing image has smaller clusters, which could hide data).
type qcow2Disk struct {
	info    source.Info
	size    int64
	img     image.Image  // nil for an empty image
	layers  []qcow2Layer // the image then its backing chain
	closers []io.Closer
}

var _ source.Disk = (*qcow2Disk)(nil)

// openQcow2 opens the qcow2 image in f and, if o allows it, its backing
// chain. It takes ownership of f only on success.
func openQcow2(ctx context.Context, f *os.File, path string, fileSize int64, o Options) (source.Disk, error) {
	top, err := readQcow2Image(f, fileSize)
	if err != nil {
		return nil, fmt.Errorf("qcow2 %s: %w", path, err)
	}
	if err := checkBackingAllowed(top, o); err != nil {
		return nil, fmt.Errorf("qcow2 %s: %w", path, err)
	}
	d := &qcow2Disk{
		info:   source.Info{Format: "qcow2", Location: path},
		size:   int64(top.size),
		layers: []qcow2Layer{{ra: f, file: f, fileSize: fileSize, img: top}},
	}
	if err := d.openBackingChain(ctx, path, top); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("qcow2 %s: %w", path, err)
	}
	if d.size == 0 {
		d.closers = append(d.closers, f)
		return d, nil
	}
	if err := d.openLibrary(f); err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("qcow2 %s: %w", path, err)
	}
	return d, nil
}

// openLibrary opens f with go-qcow2reader, which then owns f (and opens the
// backing chain again for reading).
func (d *qcow2Disk) openLibrary(f *os.File) error {
	img, err := qcow2.Open(f, qcow2reader.OpenWithType)
	if err == nil {
		err = img.Readable()
	}
	if err != nil {
		if img != nil {
			_ = img.Close()
		}
		return err
	}
	d.img = img
	return nil
}

func (d *qcow2Disk) Size() int64           { return d.size }
func (d *qcow2Disk) Describe() source.Info { return d.info }

func (d *qcow2Disk) Close() error {
	var errs []error
	if d.img != nil {
		errs = append(errs, d.img.Close())
		d.img = nil
	}
	for _, c := range d.closers {
		errs = append(errs, c.Close())
	}
	d.closers = nil
	return errors.Join(errs...)
}

// ReadAt reads like os.File.ReadAt: a read past Size is short and returns
// io.EOF.
func (d *qcow2Disk) ReadAt(p []byte, off int64) (int, error) {
	return readWithin(p, off, d.size, d.read)
}

// read fills p from off. The library may stop early with io.EOF inside the
// image (after a compressed cluster), so read loops until p is full.
func (d *qcow2Disk) read(p []byte, off int64) error {
	if d.img == nil {
		return fmt.Errorf("qcow2 %s: closed", d.info.Location)
	}
	for len(p) > 0 {
		n, err := d.img.ReadAt(p, off)
		p, off = p[n:], off+int64(n)
		if len(p) == 0 {
			return nil
		}
		if n == 0 || (err != nil && !errors.Is(err, io.EOF)) {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("qcow2 %s: read at %d: %w", d.info.Location, off, err)
		}
	}
	return nil
}

// Allocated is the union of the ranges each image of the chain stores,
// clipped to the virtual size.
func (d *qcow2Disk) Allocated(ctx context.Context) ([]source.Extent, error) {
	var all []source.Extent
	for i := range d.layers {
		var layer extentList
		if err := d.layers[i].allocated(ctx, d.size, layer.add); err != nil {
			return nil, fmt.Errorf("qcow2 %s: allocated ranges (chain depth %d): %w", d.info.Location, i, err)
		}
		all = append(all, layer.extents...)
	}
	slices.SortStableFunc(all, func(a, b source.Extent) int { return cmp.Compare(a.Offset, b.Offset) })
	var list extentList
	for _, e := range all {
		list.add(e)
	}
	return list.extents, nil
}
