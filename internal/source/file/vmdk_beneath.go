package file

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/holdfast-backup/holdfast/internal/beneath"
	"golang.org/x/sys/unix"
)

// ErrEscape matches the error of a VMDK file whose name leads out of its
// directory or through a symbolic link (confined with package beneath, as
// guestfiles confines restored files).
var ErrEscape = beneath.ErrEscape

// BeneathFiles opens the files of a VMDK in directory dir of root (dir
// "/"-separated, "" for root itself) such that neither dir nor any file
// name resolves outside root or dir or through a symbolic link: the
// descriptor and extent names come from storage a guest's owner may
// write (a shared datastore). root itself is opened as given (the
// operator's path may be a symbolic link). Close the returned closer when
// the disk is closed.
func BeneathFiles(root, dir string) (VMDKFiles, func() error, error) {
	rfd, err := beneath.OpenRoot(root)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(rfd)
	if dir == "" {
		dir = "."
	}
	dfd, err := beneath.Open(rfd, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, nil, fmt.Errorf("VMDK directory %s: %w", root, err)
	}
	f := &beneathFiles{dir: os.NewFile(uintptr(dfd), filepath.Join(root, dir))}
	return f, f.dir.Close, nil
}

type beneathFiles struct{ dir *os.File }

// OpenFile opens name beneath the directory, read-only, a regular file or
// block device only (checked with fstat on a descriptor opened
// O_NONBLOCK, as openDiskFile does).
func (b *beneathFiles) OpenFile(_ context.Context, name string) (ExtentFile, error) {
	path := filepath.Join(b.dir.Name(), name)
	fd, err := beneath.Open(int(b.dir.Fd()), name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, fmt.Errorf("VMDK directory %s: %w", b.dir.Name(), err)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		_ = unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	st, err := f.Stat()
	if err == nil {
		err = checkDiskMode(st)
	}
	if err != nil {
		_ = f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	lf, err := newLocalFile(f, st)
	if err != nil {
		return nil, err
	}
	return lf, nil
}

// newLocalFile wraps an open regular file or block device; it closes f on
// error.
func newLocalFile(f *os.File, st os.FileInfo) (*localFile, error) {
	if isBlockDevice(st) {
		size, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			_ = f.Close()
			return nil, err
		}
		return &localFile{File: f, size: size}, nil
	}
	return &localFile{File: f, size: st.Size(), regular: true}, nil
}
