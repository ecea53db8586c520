package vsphererestore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/vmware/govmomi/vmdk"
	"golang.org/x/sys/unix"
)

// maxDescriptor bounds a descriptor file: they are a few hundred bytes.
const maxDescriptor = 64 << 10

// parseFlatDescriptor reads a disk descriptor (bytes from the datastore,
// not trusted) and returns the file name of its one flat extent, which
// must cover exactly capacity bytes and lie in the descriptor's directory.
func parseFlatDescriptor(b []byte, capacity int64) (string, error) {
	if len(b) > maxDescriptor {
		return "", fmt.Errorf("disk descriptor of %d bytes: too large for a descriptor", len(b))
	}
	if bytes.HasPrefix(b, []byte("KDMV")) || bytes.HasPrefix(b, []byte("COWD")) {
		return "", fmt.Errorf("a sparse VMDK, not a descriptor of a flat disk: a rollback writes flat disks only")
	}
	if !bytes.Contains(b, []byte("createType")) {
		return "", fmt.Errorf("not a disk descriptor (no createType)")
	}
	d, err := vmdk.ParseDescriptor(bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("disk descriptor: %w", err)
	}
	if d.ParentCID != 0 && d.ParentCID != 0xffffffff {
		return "", fmt.Errorf("the disk is a delta of a parent (a snapshot): delete the VM's snapshots first")
	}
	if len(d.Extent) != 1 {
		return "", fmt.Errorf("disk descriptor names %d extents: a rollback writes disks of one flat extent", len(d.Extent))
	}
	x := d.Extent[0]
	if t := strings.ToUpper(x.Type); t != "VMFS" && t != "FLAT" {
		return "", fmt.Errorf("extent type %q: a rollback writes flat extents only", x.Type)
	}
	if x.Permission != "RW" {
		return "", fmt.Errorf("extent %q is %s, not RW", x.Info, x.Permission)
	}
	if x.Size < 0 || x.Size > (1<<62)/sectorSize || x.Size*sectorSize != capacity {
		return "", fmt.Errorf("%w: the extent holds %d sectors, the point's disk %d bytes", ErrMismatch, x.Size, capacity)
	}
	if x.Info == "" || x.Info == "." || x.Info == ".." || strings.ContainsAny(x.Info, "/\\\x00") || path.Base(x.Info) != x.Info {
		return "", fmt.Errorf("%w: extent file %q", ErrEscape, x.Info)
	}
	return x.Info, nil
}

// openBeneath opens rel (a "/"-separated path) below root without leaving
// it and without following a symbolic link on the way.
func openBeneath(root, rel string, flags int) (*os.File, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("datastore directory %s: %w", root, err)
	}
	defer unix.Close(rfd)
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC | unix.O_NOFOLLOW),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(rfd, rel, &how)
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return nil, fmt.Errorf("%w: %s below %s goes through a symbolic link or leaves it", ErrEscape, rel, root)
	case errors.Is(err, unix.ENOSYS):
		return nil, fmt.Errorf("open %s: confined access needs openat2 (Linux 5.6 or later)", rel)
	case err != nil:
		return nil, fmt.Errorf("open %s below %s: %w", rel, root, err)
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
