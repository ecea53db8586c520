package vsphererestore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/holdfast-backup/holdfast/internal/beneath"
	"github.com/holdfast-backup/holdfast/internal/source/file"
	"golang.org/x/sys/unix"
)

// maxDescriptor bounds a descriptor file: they are a few hundred bytes.
const maxDescriptor = 64 << 10

// parseFlatDescriptor reads a disk descriptor (bytes from the datastore,
// not trusted; parsed by internal/source/file, bounded) and returns the
// file name of its one writable flat extent, which must cover exactly
// capacity bytes from its start and lie in the descriptor's directory.
func parseFlatDescriptor(b []byte, capacity int64) (string, error) {
	if bytes.HasPrefix(b, []byte("KDMV")) || bytes.HasPrefix(b, []byte("COWD")) {
		return "", fmt.Errorf("a sparse VMDK, not a descriptor of a flat disk: a rollback writes flat disks only")
	}
	if len(b) > maxDescriptor {
		return "", fmt.Errorf("disk descriptor of %d bytes or more: too large for a descriptor", len(b))
	}
	x, err := file.ParseFlatDescriptor(b)
	switch {
	case errors.Is(err, file.ErrReference):
		return "", fmt.Errorf("%w: %v", ErrEscape, err)
	case err != nil:
		return "", fmt.Errorf("a rollback writes disks of one flat extent: %w", err)
	case !x.Writable:
		return "", fmt.Errorf("extent %q is not RW", x.File)
	case x.Offset != 0 || x.Sectors*sectorSize != capacity:
		return "", fmt.Errorf("%w: the extent holds %d sectors from sector %d, the point's disk %d bytes", ErrMismatch, x.Sectors, x.Offset, capacity)
	}
	return x.File, nil
}

// openBeneath opens rel (a "/"-separated path) below root without leaving
// it and without following a symbolic link on the way.
func openBeneath(root, rel string, flags int) (*os.File, error) {
	rfd, err := beneath.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("datastore directory: %w", err)
	}
	defer unix.Close(rfd)
	fd, err := beneath.Open(rfd, rel, flags|unix.O_NOFOLLOW)
	switch {
	case errors.Is(err, beneath.ErrEscape):
		return nil, fmt.Errorf("%w: %s below %s goes through a symbolic link or leaves it", ErrEscape, rel, root)
	case err != nil:
		return nil, fmt.Errorf("below %s: %w", root, err)
	}
	return os.NewFile(uintptr(fd), path.Join(root, rel)), nil
}

// readDescriptor reads a descriptor file below root, at most
// maxDescriptor bytes.
func readDescriptor(root, rel string) ([]byte, error) {
	f, err := openBeneath(root, rel, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxDescriptor+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return b, nil
}
