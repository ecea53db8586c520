package restorefs

import "errors"

// Errors of this package.
var (
	// ErrClosed is returned by calls on a closed Disk or Overlay.
	ErrClosed = errors.New("restorefs: closed")
	// ErrBeyondEnd is returned by writes that reach past the disk's end.
	ErrBeyondEnd = errors.New("write beyond the end of the disk")
	// ErrBadBitmap means a redo bitmap file is damaged or does not match
	// the overlay being opened.
	ErrBadBitmap = errors.New("redo bitmap does not match")
	// ErrOverlayInUse means another process holds the overlay open.
	ErrOverlayInUse = errors.New("overlay is in use by another process")
)

// Extent is a byte range [Offset, Offset+Length) of a disk. Zero says the
// range reads as zeros without holding data.
type Extent struct {
	Offset int64 `json:"offset"`
	Length int64 `json:"length"`
	Zero   bool  `json:"zero,omitempty"`
}

// End returns the first byte after the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }
