package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// ExtentFile is one file of a VMDK (its descriptor or an extent) opened
// for reading, wherever it lives: a local file, a datastore file read over
// HTTPS, a file under a mounted datastore.
type ExtentFile interface {
	io.ReaderAt
	io.Closer
	Size() int64
}

// VMDKFiles opens the files of one VMDK: the name OpenVMDK was given, and
// the extents its descriptor names, relative to the descriptor's
// directory. OpenVMDK passes it only local names (no "/" at the start, no
// "..").
type VMDKFiles interface {
	OpenFile(ctx context.Context, name string) (ExtentFile, error)
}

// OpenVMDK opens a VMDK whose files files opens: a text descriptor and the
// FLAT, VMFS, ZERO and SPARSE extents it names, or a monolithicSparse
// file. The descriptor must not name a parent (a delta disk is read
// through the platform's snapshot, not here) and its extents must be
// local names. location is recorded as the disk's Location.
func OpenVMDK(ctx context.Context, files VMDKFiles, name, location string) (source.Disk, error) {
	if err := checkLocalName(name); err != nil {
		return nil, fmt.Errorf("vmdk %s: %w", location, err)
	}
	f, err := files.OpenFile(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("vmdk %s: %w", location, err)
	}
	head := make([]byte, 64)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, fmt.Errorf("vmdk %s: read header: %w", location, err)
	}
	head = head[:n]
	var d *disk
	switch {
	case bytes.HasPrefix(head, []byte(vmdkSparseMagic)):
		d, err = openMonolithicSparse(f, location, f.Size())
	case bytes.HasPrefix(head, []byte(vmdkCOWDMagic)):
		err = fmt.Errorf("vmdk %s: VMware ESX COWD (vmfsSparse) extents are not supported", location)
	case bytes.HasPrefix(head, []byte(descriptorMagic)) && f.Size() <= maxDescriptorSize:
		d, err = openDescriptor(ctx, f, localNames{files}, location, f.Size(), false)
		if err == nil {
			f.Close() // the descriptor is read; the extents stay open
			return d, nil
		}
	default:
		err = fmt.Errorf("vmdk %s: neither a VMDK descriptor nor a sparse VMDK", location)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return withCloser(d, f, nil)
}

// localNames refuses extent names that leave the descriptor's directory.
type localNames struct{ files VMDKFiles }

func (l localNames) OpenFile(ctx context.Context, name string) (ExtentFile, error) {
	if err := checkLocalName(name); err != nil {
		return nil, err
	}
	return l.files.OpenFile(ctx, name)
}

func checkLocalName(name string) error {
	if !filepath.IsLocal(name) || strings.ContainsRune(name, '\\') {
		return fmt.Errorf("file name %q leaves the VMDK's directory", name)
	}
	return nil
}

// dirFiles opens a local VMDK's extents relative to its directory (an
// absolute name as written: a descriptor the host made may name one).
type dirFiles struct{ dir string }

// localFile is an extent file on local storage; a regular file's holes
// are found with SEEK_DATA.
type localFile struct {
	*os.File
	size    int64
	regular bool
}

func (f *localFile) Size() int64 { return f.size }

func (d dirFiles) OpenFile(_ context.Context, name string) (ExtentFile, error) {
	path := name
	if !filepath.IsAbs(path) {
		path = filepath.Join(d.dir, name)
	}
	f, st, err := openDiskFile(path)
	if err != nil {
		return nil, err
	}
	lf, err := newLocalFile(f, st)
	if err != nil {
		return nil, err
	}
	return lf, nil
}

// flatExtentOf reads a FLAT extent starting at offset of f.
func flatExtentOf(f ExtentFile, name string, offset int64) extent {
	if lf, ok := f.(*localFile); ok {
		return &flatExtent{f: lf.File, offset: offset, sparse: lf.regular}
	}
	return &readerExtent{r: f, name: name, offset: offset}
}

// readerExtent is a FLAT extent of a file that cannot tell its holes: it
// is reported as allocated throughout.
type readerExtent struct {
	r      io.ReaderAt
	name   string
	offset int64
}

func (e *readerExtent) readAt(p []byte, off int64) error {
	n, err := e.r.ReadAt(p, e.offset+off)
	if n == len(p) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s at %d: %w", e.name, e.offset+off, err)
}

func (e *readerExtent) allocated(_ context.Context, length, base int64, add func(source.Extent)) error {
	add(source.Extent{Offset: base, Length: length})
	return nil
}
