package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"golang.org/x/sys/unix"
)

// fsImmutableFL is FS_IMMUTABLE_FL of <linux/fs.h>: the file may not be
// modified, renamed, linked to or removed, even by root, until the flag
// is cleared (which needs CAP_LINUX_IMMUTABLE), as `chattr +i` sets it.
const fsImmutableFL = 0x00000010

// SetImmutable sets (on) or clears the immutable attribute of a stored
// file (FS_IOC_SETFLAGS with FS_IMMUTABLE_FL, as chattr +i / -i). A file
// system without attributes (tmpfs, overlayfs) answers ENOTTY,
// EOPNOTSUPP or EINVAL; a process without CAP_LINUX_IMMUTABLE EPERM. It
// is not part of Backend; a hardened repository uses it when available.
func (l *Local) SetImmutable(name string, on bool) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	if err := setImmutable(p, on); err != nil {
		return fmt.Errorf("set immutable attribute of %s: %w", name, notExist(err))
	}
	return nil
}

// IsImmutable reports whether a stored file carries the immutable attribute.
func (l *Local) IsImmutable(name string) (bool, error) {
	p, err := l.path(name)
	if err != nil {
		return false, err
	}
	flags, err := getFlags(p)
	if err != nil {
		return false, notExist(err)
	}
	return flags&fsImmutableFL != 0, nil
}

// ProbeImmutable checks that files in the repository directory can be
// made immutable and mutable again: it creates a temporary file, sets and
// clears its attribute and removes it. The error says why not (the file
// system, or the missing capability).
func (l *Local) ProbeImmutable() error {
	f, err := os.CreateTemp(l.root, tmpPrefix+"probe-")
	if err != nil {
		return fmt.Errorf("probe immutable attribute: %w", err)
	}
	p := f.Name()
	f.Close()
	defer os.Remove(p)
	if err := setImmutable(p, true); err != nil {
		return describeAttrError(err)
	}
	if err := setImmutable(p, false); err != nil {
		return fmt.Errorf("%w; %s is left immutable (chattr -i it)", describeAttrError(err), p)
	}
	return nil
}

// describeAttrError explains why the immutable attribute cannot be set.
func describeAttrError(err error) error {
	switch {
	case errors.Is(err, unix.ENOTTY), errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.EINVAL):
		return fmt.Errorf("the file system does not support the immutable attribute (chattr +i): %w", err)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("the process may not set the immutable attribute (it needs CAP_LINUX_IMMUTABLE, e.g. root): %w", err)
	}
	return fmt.Errorf("cannot set the immutable attribute: %w", err)
}

func getFlags(p string) (int, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return 0, &fs.PathError{Op: "ioctl FS_IOC_GETFLAGS", Path: p, Err: err}
	}
	return int(int32(flags)), nil
}

func setImmutable(p string, on bool) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return &fs.PathError{Op: "ioctl FS_IOC_GETFLAGS", Path: p, Err: err}
	}
	flags = int(int32(flags))
	want := flags &^ fsImmutableFL
	if on {
		want = flags | fsImmutableFL
	}
	if want == flags {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, want); err != nil {
		return &fs.PathError{Op: "ioctl FS_IOC_SETFLAGS", Path: p, Err: err}
	}
	return nil
}

// immutableFileError turns the EPERM a removal or rename of a file with
// the immutable attribute gets into an *ImmutableError; other errors are
// returned as they are.
func immutableFileError(op, name, p string, err error) error {
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	if flags, ferr := getFlags(p); ferr != nil || flags&fsImmutableFL == 0 {
		return err
	}
	return &ImmutableError{What: op + " " + name, Reason: "the file has the immutable attribute (chattr +i); " +
		"the repository agent run with --immutable removes it once the file is older than its window"}
}

// TouchImmutable is Touch for a file with the immutable attribute: it
// clears the attribute, sets the modification time to now and sets the
// attribute again, on one open file. It is not part of Backend; a
// hardened repository uses it when a Touch is refused.
func (l *Local) TouchImmutable(name string) error {
	p, err := l.path(name)
	if err != nil {
		return err
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return notExist(&fs.PathError{Op: "open", Path: p, Err: err})
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return &fs.PathError{Op: "ioctl FS_IOC_GETFLAGS", Path: p, Err: err}
	}
	flags = int(int32(flags))
	if flags&fsImmutableFL != 0 {
		if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags&^fsImmutableFL); err != nil {
			return &fs.PathError{Op: "ioctl FS_IOC_SETFLAGS", Path: p, Err: err}
		}
	}
	now := clock.Real().Now()
	tv := []unix.Timeval{unix.NsecToTimeval(now.UnixNano()), unix.NsecToTimeval(now.UnixNano())}
	terr := unix.Futimes(fd, tv)
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags|fsImmutableFL); err != nil {
		return &fs.PathError{Op: "ioctl FS_IOC_SETFLAGS", Path: p, Err: err}
	}
	if terr != nil {
		return &fs.PathError{Op: "futimes", Path: p, Err: terr}
	}
	return nil
}
