package storage

import (
	"errors"
	"fmt"
	"time"
)

// ErrImmutable is returned (wrapped, as an *ImmutableError) when a
// backend refuses to delete or overwrite a file because it is immutable:
// younger than a hardened repository's window, or carrying the file
// system's immutable attribute.
var ErrImmutable = errors.New("immutable")

// ImmutableError names the file (or restore point) that may not be
// deleted or overwritten and when it may be.
type ImmutableError struct {
	// What is refused, e.g. "forget point 3f2a…" or "remove chunks/ab/ab12…".
	What string
	// Written is the file's modification time (zero if unknown); Until
	// the time it becomes deletable (zero: never through this backend).
	Written, Until time.Time
	// Reason says why, e.g. "the repository agent keeps everything for 7
	// days (--immutable 7)".
	Reason string
}

func (e *ImmutableError) Error() string {
	const layout = "2006-01-02 15:04:05 MST"
	msg := e.What + ": refused, immutable"
	switch {
	case !e.Until.IsZero():
		msg += " until " + e.Until.UTC().Format(layout)
		if !e.Written.IsZero() {
			msg += fmt.Sprintf(" (written %s)", e.Written.UTC().Format(layout))
		}
	case !e.Written.IsZero():
		msg += fmt.Sprintf(" (written %s)", e.Written.UTC().Format(layout))
	}
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrImmutable) hold.
func (e *ImmutableError) Unwrap() error { return ErrImmutable }
