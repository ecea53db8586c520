package file

import (
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// openDiskFile opens path read-only for reading disk data: a regular file
// or a block device, nothing else. Every file this package reads — the disk
// named by the user, VMDK extents, qcow2 backing files — is opened here.
//
// It never blocks in open(2) and never opens what is not a disk: a FIFO
// would block until a writer appears (ignoring cancellation), a character
// device may act on open (a TTY, a watchdog), a directory or socket holds no
// disk. The type is checked with stat before opening, then, race-free, with
// fstat on the descriptor, which was opened O_NONBLOCK (so a FIFO swapped in
// between cannot block); O_NONBLOCK is then cleared so reads block normally.
func openDiskFile(path string) (*os.File, os.FileInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if err := checkDiskMode(st); err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		_ = unix.Close(fd)
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	if st, err = f.Stat(); err == nil {
		err = checkDiskMode(st)
	}
	if err != nil {
		_ = f.Close()
		return nil, nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return f, st, nil
}

// checkDiskMode refuses anything but a regular file or a block device.
func checkDiskMode(st os.FileInfo) error {
	if st.Mode().IsRegular() || isBlockDevice(st) {
		return nil
	}
	return fmt.Errorf("not a regular file or block device but %s", describeMode(st.Mode()))
}

// describeMode names the type of a file that is not a disk.
func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSocket != 0:
		return "a socket"
	default:
		return fmt.Sprintf("a special file (mode %s)", m)
	}
}
