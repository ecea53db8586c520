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
type ChangeTracker interface {
	// Changed returns the ranges written since the backup whose ChangeID was
	// previousChangeID. When the platform cannot tell (no previous ID, a
	// lost, inconsistent or foreign bitmap, a resized disk) it returns
	// Known=false and the reason; the pipeline then reads every allocated
	// range and compares hashes, and says why.
	Changed(ctx context.Context, previousChangeID string) (Changes, error)
	// ChangeID identifies the state this backup captures, for the next one.
	ChangeID() string
}

// Changes is the answer of a ChangeTracker.
type Changes struct {
	Extents []Extent
	Known   bool
	Reason  string // why Known is false
}

// Info describes where a disk came from; it is recorded in the manifest.
type Info struct {
	// Format is the image format read: "raw", "qcow2", "vmdk-flat",
	// "vmdk-sparse", "block".
	Format string `json:"format"`
	// Location is the path or URL the disk was read from (no secrets).
	Location string `json:"location"`
	// Transport is how the data was read (empty: a local file).
	Transport Transport `json:"transport,omitempty"`
}

// FullExtent returns the single extent covering a disk of the given size,
// or none for an empty disk.
func FullExtent(size int64) []Extent {
	if size <= 0 {
		return nil
	}
	return []Extent{{Offset: 0, Length: size}}
}
