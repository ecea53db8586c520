package beneath

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// ErrEscape matches a name that leads out of its directory or through a
// symbolic link.
var ErrEscape = errors.New("leads out of its directory or through a symbolic link")

// ErrUnsupported matches a kernel without openat2 (before Linux 5.6).
var ErrUnsupported = errors.New("confined opens need openat2 (Linux 5.6 or later)")

const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// OpenRoot opens the directory root as an O_PATH descriptor to resolve
// names beneath. root itself is opened as given: the operator's path may
// be a symbolic link. Close it with unix.Close.
func OpenRoot(root string) (int, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	return fd, nil
}

// Open opens rel beneath the directory dirfd with flags (O_CLOEXEC is
// added) and returns the new descriptor. A name that leads out or through
// a symbolic link is an error wrapping ErrEscape; any other failure keeps
// its errno (errors.Is(err, unix.ENOENT) works).
func Open(dirfd int, rel string, flags int) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve}
	fd, err := unix.Openat2(dirfd, rel, &how)
	switch {
	case err == nil:
		return fd, nil
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return -1, fmt.Errorf("%s: %w", rel, ErrEscape)
	case errors.Is(err, unix.ENOSYS):
		return -1, fmt.Errorf("%s: %w", rel, ErrUnsupported)
	}
	return -1, &fs.PathError{Op: "open", Path: rel, Err: err}
}
