package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrEscape matches the error of a VMDK file whose name leads out of its
// directory or through a symbolic link.
var ErrEscape = errors.New("leads out of the VMDK's directory or through a symbolic link")

// beneathResolve confines a name to the directory it is resolved from, the
// same way guestfiles confines restored files: no "..", absolute names or
// symbolic links on the way (openat2, Linux 5.6).
const beneathResolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// BeneathFiles opens the files of a VMDK in directory dir of root (dir
// "/"-separated, "" for root itself) such that neither dir nor any file
// name resolves outside root or dir or through a symbolic link: the
// descriptor and extent names come from storage a guest's owner may
// write (a shared datastore). root itself is opened as given (the
// operator's path may be a symbolic link). Close the returned closer when
// the disk is closed.
func BeneathFiles(root, dir string) (VMDKFiles, func() error, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rfd)
	if dir == "" {
		dir = "."
	}
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneathResolve}
	dfd, err := unix.Openat2(rfd, dir, &how)
	if err != nil {
		return nil, nil, beneathError(filepath.Join(root, dir), err)
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
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC, Resolve: beneathResolve}
	fd, err := unix.Openat2(int(b.dir.Fd()), name, &how)
	if err != nil {
		return nil, beneathError(path, err)
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

func beneathError(path string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%s: %w", path, ErrEscape)
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("%s: confined opens need openat2 (Linux 5.6 or later): %w", path, err)
	}
	return &fs.PathError{Op: "open", Path: path, Err: err}
}
