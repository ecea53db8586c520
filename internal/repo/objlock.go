package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// ErrNoObjectLock means a repository with Object Lock was asked of a
// backend that cannot lock objects (a local directory, a repository
// agent's mover connection).
var ErrNoObjectLock = errors.New("this storage cannot lock objects (Object Lock needs object storage)")

// MaxObjectLockDays bounds the retention a repository asks for (S3 allows
// up to 100 years; more is a typo).
const MaxObjectLockDays = 36500

// ObjectLock is a repository's immutability rule, recorded in its config:
// every object a point needs is written with an S3 Object Lock retention
// of Mode that ends no sooner than Days after the write.
//
// The retention an object gets:
//   - a manifest (points/ID): now + Days — the point cannot be forgotten
//     before;
//   - chunks, indexes, the config and key files: now + 1.5×Days when
//     written, and again whenever a backup reuses them (or commits a point,
//     for the config and key files) with less than 1.25×Days left. So what
//     a point needs stays locked at least as long as its manifest for
//     backups shorter than Days/4, and most reuses cost no retention
//     request (only the HEAD that checks the chunk is there).
//
// Locks, holds and scan records are written without a retention: they
// come and go.
type ObjectLock struct {
	Days int    `json:"days"`
	Mode string `json:"mode"` // storage.ModeCompliance or storage.ModeGovernance
}

// Validate checks the rule.
func (l ObjectLock) Validate() error {
	if l.Days < 1 || l.Days > MaxObjectLockDays {
		return fmt.Errorf("object lock: %d days: want 1 to %d", l.Days, MaxObjectLockDays)
	}
	if l.Mode != storage.ModeCompliance && l.Mode != storage.ModeGovernance {
		return fmt.Errorf("object lock mode %q: want %s or %s", l.Mode, storage.ModeCompliance, storage.ModeGovernance)
	}
	return nil
}

func (l ObjectLock) period() time.Duration { return time.Duration(l.Days) * 24 * time.Hour }

// writeUntil is the retention a new object gets at now.
func (l ObjectLock) writeUntil(name string, now time.Time) time.Time {
	if strings.HasPrefix(name, "points/") {
		return now.Add(l.period())
	}
	return now.Add(l.period() * 3 / 2)
}

// needsExtension reports whether an object locked until until must be
// extended when used at now.
func (l ObjectLock) needsExtension(until, now time.Time) bool {
	return until.Before(now.Add(l.period() * 5 / 4))
}

// lockedName reports whether name is locked in a repository with Object
// Lock: the files a point needs.
func lockedName(name string) bool {
	if name == configFile {
		return true
	}
	for _, dir := range []string{keysDir + "/", "points/", "indexes/", "chunks/"} {
		if strings.HasPrefix(name, dir) {
			return true
		}
	}
	return false
}

// lockedBackend is the backend of a repository with Object Lock: it
// writes the files a point needs with their retention, turns a touch into
// a retention check (extended when short), and removes for good (every
// version) rather than leaving a delete marker.
type lockedBackend struct {
	storage.Backend
	lk   storage.Locker
	rule ObjectLock
	now  func() time.Time
}

// withObjectLock wraps be when the config asks for Object Lock. On a
// backend that cannot lock (a copy of the bucket in a directory), the
// repository can be read but not written: saving or reusing a file a point
// needs fails with ErrNoObjectLock.
func withObjectLock(be storage.Backend, cfg Config, now func() time.Time) storage.Backend {
	if cfg.ObjectLock == nil {
		return be
	}
	if lb, ok := be.(*lockedBackend); ok {
		be = lb.Backend
	}
	lk, _ := storage.AsLocker(be)
	return &lockedBackend{Backend: be, lk: lk, rule: *cfg.ObjectLock, now: now}
}

// cannotLock is the error of a write to a locked repository through a
// backend that cannot lock.
func (b *lockedBackend) cannotLock(name string) error {
	return fmt.Errorf("%s/%s: the repository uses Object Lock: %w", b.Location(), name, ErrNoObjectLock)
}

func (b *lockedBackend) retention(until time.Time) storage.Retention {
	return storage.Retention{Mode: b.rule.Mode, Until: until.UTC().Truncate(time.Second).Add(time.Second)}
}

// Save writes a file a point needs with its retention. Before a manifest,
// it makes sure the config and key files are locked as long.
func (b *lockedBackend) Save(ctx context.Context, name string, data []byte) error {
	if !lockedName(name) {
		return b.Backend.Save(ctx, name, data)
	}
	if b.lk == nil {
		return b.cannotLock(name)
	}
	if strings.HasPrefix(name, "points/") {
		if err := b.keepRepositoryFiles(ctx); err != nil {
			return err
		}
	}
	return b.lk.SaveLocked(ctx, name, data, b.retention(b.rule.writeUntil(name, b.now())))
}

// Touch checks that a file a point needs is there and locked long enough,
// extending its retention when not (see ObjectLock). Other files are
// touched.
func (b *lockedBackend) Touch(ctx context.Context, name string) error {
	if !lockedName(name) {
		return b.Backend.Touch(ctx, name)
	}
	if b.lk == nil {
		return b.cannotLock(name)
	}
	return b.keep(ctx, name)
}

// keep makes sure name's current version stays locked long enough. A
// current version without any retention was not written by Holdfast (it
// writes every such file locked): someone wrote over the file. A chunk or
// index then counts as absent, so the backup stores it again on top; the
// config and key files are an error that points to 'repo recover'.
func (b *lockedBackend) keep(ctx context.Context, name string) error {
	cur, err := b.lk.Retention(ctx, name)
	if err != nil {
		return err
	}
	if cur.Until.IsZero() {
		if strings.HasPrefix(name, "chunks/") || strings.HasPrefix(name, "indexes/") {
			return fmt.Errorf("%s/%s: current version not locked (written over): %w", b.Location(), name, storage.ErrNotExist)
		}
		return fmt.Errorf("%s/%s: the current version has no retention: it was written over; run 'holdfast repo recover'", b.Location(), name)
	}
	now := b.now()
	if !b.rule.needsExtension(cur.Until, now) {
		return nil
	}
	return b.lk.ExtendRetention(ctx, name, b.retention(now.Add(b.rule.period()*3/2)))
}

// keepRepositoryFiles keeps the config and every key file locked.
func (b *lockedBackend) keepRepositoryFiles(ctx context.Context) error {
	names := []string{configFile}
	err := b.Backend.List(ctx, keysDir, func(fi storage.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := b.keep(ctx, n); err != nil {
			return fmt.Errorf("keep %s locked: %w", n, err)
		}
	}
	return nil
}

// Remove deletes every version of name: a plain delete would only hide it
// behind a delete marker, which 'repo recover' would undo. A locked
// version gives storage.ErrRetention.
func (b *lockedBackend) Remove(ctx context.Context, name string) error {
	if b.lk == nil {
		return b.Backend.Remove(ctx, name)
	}
	var vs []storage.Version
	err := b.lk.Versions(ctx, name, func(v storage.Version) error {
		if v.Name == name {
			vs = append(vs, v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, v := range vs {
		if err := b.lk.RemoveVersion(ctx, name, v.VersionID); err != nil {
			return err
		}
	}
	return nil
}

// objectLock returns the repository's Object Lock rule and the locker,
// or nil.
func (r *Repository) objectLock() *lockedBackend {
	if lb, ok := r.be.(*lockedBackend); ok && lb.lk != nil {
		return lb
	}
	return nil
}

// ObjectLock returns the repository's Object Lock rule (nil: none).
func (r *Repository) ObjectLock() *ObjectLock { return r.cfg.ObjectLock }
