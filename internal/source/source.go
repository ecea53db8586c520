package source

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound is returned when a source (file, device, URL target) does not exist.
var ErrNotFound = errors.New("source not found")

// Extent is a byte range [Offset, Offset+Length) of a disk.
type Extent struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
}

// End returns the first byte after the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Disk is one virtual disk being backed up.
//
// ReadAt must be safe for concurrent use by several goroutines and must
// return zeros for unallocated ranges. Allocated reports the ranges that may
// hold non-zero data, sorted, non-overlapping and coalesced; everything
// outside them reads as zeros and is never read by the pipeline. A disk that
// cannot tell returns a single extent covering the whole disk.
type Disk interface {
	io.ReaderAt
	io.Closer
	// Size is the virtual size of the disk in bytes.
	Size() int64
	// Allocated lists the ranges that may hold data.
	Allocated(ctx context.Context) ([]Extent, error)
	// Describe names the disk for manifests and messages (e.g. "qcow2 /vm/a.qcow2").
	Describe() Info
}

// ChangeTracker is implemented by disks whose platform tracks changed blocks.
// Changed returns the ranges written since the backup identified by the
// previous change ID, or ok=false when the platform cannot tell (no previous
// ID, lost bitmap): the pipeline then reads every allocated range and
// compares hashes.
type ChangeTracker interface {
	Changed(ctx context.Context, previousChangeID string) (extents []Extent, ok bool, err error)
	// ChangeID identifies the state this backup captures, for the next one.
	ChangeID() string
}

// Info describes where a disk came from; it is recorded in the manifest.
type Info struct {
	// Format is the image format read: "raw", "qcow2", "vmdk-flat",
	// "vmdk-sparse", "block".
	Format string `json:"format"`
	// Location is the path or URL the disk was read from (no secrets).
	Location string `json:"location"`
}

// FullExtent returns the single extent covering a disk of the given size,
// or none for an empty disk.
func FullExtent(size int64) []Extent {
	if size <= 0 {
		return nil
	}
	return []Extent{{Offset: 0, Length: size}}
}
