package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// Formats accepted by Options.Format.
const (
	FormatAuto  = ""
	FormatRaw   = "raw"
	FormatQcow2 = "qcow2"
	FormatVMDK  = "vmdk"
)

// Options tune Open.
type Options struct {
	// Format forces the image format instead of detecting it from the
	// content. Detection trusts bytes the guest may control: a guest of a
	// raw disk can write a qcow2 header naming a host file as backing file.
	// Callers that know a disk is raw should say so. A detected image
	// never reads other files: a detected qcow2 image with a backing file
	// and a detected VMDK descriptor naming extent files are refused.
	Format string
	// FollowBacking lets a qcow2 image read its backing chain; it needs
	// Format FormatQcow2 (the caller vouches that the image, and so the
	// backing file names in it, are the host's, not a guest's). Without
	// it a qcow2 image with a backing file is refused.
	FollowBacking bool
}

// Open opens the disk image or block device named by spec, a local path or
// a file:// URL (file:///abs/path, percent-encoded). The format is detected
// from the content of regular files unless o.Format says otherwise; block
// devices are always read raw. A missing file gives an error wrapping
// source.ErrNotFound.
func Open(ctx context.Context, spec string, o Options) (source.Disk, error) {
	switch o.Format {
	case FormatAuto, FormatRaw, FormatQcow2, FormatVMDK:
	default:
		return nil, fmt.Errorf("unknown image format %q (want raw, qcow2 or vmdk)", o.Format)
	}
	if o.FollowBacking && o.Format != FormatQcow2 {
		return nil, fmt.Errorf("following backing files needs the format given as qcow2, not %q", o.Format)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err := Location(spec) // manifests record where the disk came from
	if err != nil {
		return nil, err
	}
	f, st, err := openFile(path)
	if err != nil {
		return nil, err
	}
	d, err := openDisk(ctx, f, path, st, o)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return d, nil
}

// specPath returns the local path named by a path or file:// URL
// (source.Parse).
func specPath(spec string) (string, error) {
	s, err := source.Parse(spec)
	if err != nil {
		return "", err
	}
	if !s.IsFile() {
		return "", fmt.Errorf("file source %s: want a path or a file:// URL", s)
	}
	return s.Path, nil
}

// openFile opens the disk file and classifies the usual failures.
func openFile(path string) (*os.File, os.FileInfo, error) {
	f, st, err := openDiskFile(path)
	if err != nil {
		return nil, nil, classifyOpenError(path, err)
	}
	return f, st, nil
}

func classifyOpenError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s: %w", source.ErrNotFound, path, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("file source %s: permission denied, the backup user cannot read it: %w", path, err)
	default:
		return fmt.Errorf("file source %s: %w", path, err)
	}
}

// Magic numbers and prefixes used to detect formats.
const (
	qcow2Magic      = "QFI\xfb"
	vmdkSparseMagic = "KDMV"
	vmdkCOWDMagic   = "COWD"
	descriptorMagic = "# Disk DescriptorFile"
)

// openDisk detects the format of an open file and builds its disk. It takes
// ownership of f only on success.
func openDisk(ctx context.Context, f *os.File, path string, st os.FileInfo, o Options) (source.Disk, error) {
	if isBlockDevice(st) || o.Format == FormatRaw {
		d, err := openRaw(f, path, st)
		return withCloser(d, f, err)
	}
	head := make([]byte, 64)
	n, err := f.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("file source %s: read header: %w", path, err)
	}
	head = head[:n]
	if err := checkFormat(head, o.Format, path); err != nil {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(head, []byte(qcow2Magic)):
		return openQcow2(ctx, f, path, st.Size(), o)
	case bytes.HasPrefix(head, []byte(vmdkSparseMagic)):
		d, err := openMonolithicSparse(f, path, st.Size())
		return withCloser(d, f, err)
	case bytes.HasPrefix(head, []byte(vmdkCOWDMagic)):
		return nil, fmt.Errorf("vmdk %s: VMware ESX COWD (vmfsSparse) extents are not supported", path)
	case bytes.HasPrefix(head, []byte(descriptorMagic)) && st.Size() <= maxDescriptorSize:
		d, err := openDescriptor(ctx, f, dirFiles{dir: filepath.Dir(path)}, path, st.Size(), o.Format == FormatAuto)
		return withCloser(d, f, err)
	default:
		d, err := openRaw(f, path, st)
		return withCloser(d, f, err)
	}
}

// checkFormat refuses content that does not match a forced format.
func checkFormat(head []byte, format, path string) error {
	isQcow2 := bytes.HasPrefix(head, []byte(qcow2Magic))
	isVMDK := bytes.HasPrefix(head, []byte(vmdkSparseMagic)) || bytes.HasPrefix(head, []byte(vmdkCOWDMagic)) ||
		bytes.HasPrefix(head, []byte(descriptorMagic))
	switch {
	case format == FormatQcow2 && !isQcow2:
		return fmt.Errorf("file source %s: not a qcow2 image", path)
	case format == FormatVMDK && !isVMDK:
		return fmt.Errorf("file source %s: not a VMDK image", path)
	}
	return nil
}

// withCloser registers c to be closed with a successfully built disk.
func withCloser(d *disk, c io.Closer, err error) (source.Disk, error) {
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, c)
	return d, nil
}

// RecordedFormat maps the format a disk of this package reports
// (source.Info.Format, as a point's manifest records it) to the
// Options.Format that reads the file the same way again: "raw" and "block"
// give FormatRaw, "qcow2" FormatQcow2, "vmdk-flat" and "vmdk-sparse"
// FormatVMDK; any other (an NBD export) gives FormatAuto. Callers that back
// up the same disk again pass it, so that a raw disk whose guest later
// writes an image header is still read as raw.
func RecordedFormat(infoFormat string) string {
	switch infoFormat {
	case "raw", "block":
		return FormatRaw
	case "qcow2":
		return FormatQcow2
	case "vmdk-flat", "vmdk-sparse":
		return FormatVMDK
	}
	return FormatAuto
}

// Location returns the absolute path Open records as the Location of the
// disk named by spec (a path or file:// URL).
func Location(spec string) (string, error) {
	path, err := specPath(spec)
	if err != nil {
		return "", err
	}
	return filepath.Abs(path)
}
