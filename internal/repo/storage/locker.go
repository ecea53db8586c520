package storage

import (
	"context"
	"errors"
	"time"
)

// ErrRetention is returned (wrapped) when the store refuses a change
// because an object is under a retention (S3 Object Lock): deleting a
// locked version, shortening its retention.
var ErrRetention = errors.New("refused by the object's retention (Object Lock)")

// Retention modes (S3 Object Lock).
const (
	// ModeCompliance: nobody, not even the bucket's owner, can shorten the
	// retention or delete a locked version before it ends.
	ModeCompliance = "compliance"
	// ModeGovernance: a principal with the bypass permission
	// (s3:BypassGovernanceRetention) can; others cannot.
	ModeGovernance = "governance"
)

// Retention is an object version's lock: until Until, the version cannot
// be deleted and its retention cannot be shortened (see the modes).
type Retention struct {
	Mode  string    // ModeCompliance or ModeGovernance; "" with a zero Until: none
	Until time.Time // zero: not locked
}

// Locked reports whether the retention still holds at now.
func (r Retention) Locked(now time.Time) bool { return now.Before(r.Until) }

// Version is one version of a stored file in a versioned store, or a
// delete marker (which hides the older versions from Load, Stat and List).
type Version struct {
	Name         string
	VersionID    string
	Size         int64
	ModTime      time.Time
	Latest       bool // the current version (or marker) of Name
	DeleteMarker bool
}

// Locker is implemented by backends that can lock what they store (S3
// with Object Lock on a versioned bucket). The repository asks for it with
// a type assertion; a backend without it cannot hold a locked repository.
type Locker interface {
	// SaveLocked is Save with a retention on the stored version.
	SaveLocked(ctx context.Context, name string, data []byte, r Retention) error
	// Retention reads the retention of name's current version (zero
	// when it has none); ErrNotExist when name is absent.
	Retention(ctx context.Context, name string) (Retention, error)
	// ExtendRetention moves the retention of name's current version to
	// until in mode; it never shortens (an earlier until is no error and
	// changes nothing). ErrNotExist when name is absent.
	ExtendRetention(ctx context.Context, name string, r Retention) error
	// Versions calls fn for every version and delete marker of the file
	// dir, or below the directory dir ("": everything).
	Versions(ctx context.Context, dir string, fn func(Version) error) error
	// VersionRetention reads the retention of one version.
	VersionRetention(ctx context.Context, name, versionID string) (Retention, error)
	// RemoveVersion deletes one version or delete marker for good; a
	// locked version gives ErrRetention.
	RemoveVersion(ctx context.Context, name, versionID string) error
}

// AsLocker finds the Locker of be or of a backend it decorates (a
// decorator has Unwrap() Backend).
func AsLocker(be Backend) (Locker, bool) {
	for be != nil {
		if lk, ok := be.(Locker); ok {
			return lk, true
		}
		u, ok := be.(interface{ Unwrap() Backend })
		if !ok {
			return nil, false
		}
		be = u.Unwrap()
	}
	return nil, false
}
