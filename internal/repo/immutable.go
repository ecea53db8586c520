package repo

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// ImmutableOptions configure NewImmutable.
type ImmutableOptions struct {
	// Window is how long a file stays immutable after it was written (or,
	// for a chunk, last touched by a backup that reuses it).
	Window time.Duration
	// Attributes sets the file system's immutable attribute on chunks,
	// indexes, manifests and scan records once they are synced, and
	// clears it before this backend deletes one it may delete. The backend
	// must implement SetImmutable (storage.Local does); probe first.
	Attributes bool
	// Reason ends refusals, e.g. "the repository agent keeps everything
	// for 7 days (--immutable 7)".
	Reason string
	// AttrError, if set, hears about attributes that could not be set.
	AttrError func(name string, err error)
	Clock     clock.Clock // nil: the real clock
}

// attrSetter is storage.Local's SetImmutable.
type attrSetter interface {
	SetImmutable(name string, on bool) error
}

// maxPendingAttrs bounds the names remembered between syncs; past it the
// backend syncs early and sets their attributes.
const maxPendingAttrs = 16384

// Immutable is the storage of a hardened repository: a storage.Backend
// wrapper that refuses, with an *storage.ImmutableError, every removal or
// overwrite of repository data younger than its window, whoever asks.
// What it protects and what it lets through, by name:
//
//   - chunks/…: removal and renaming aside (gc) only once older than the
//     window; a Save of a chunk that exists keeps the stored one (chunks
//     are content-addressed and verified on upload), so nothing is ever
//     overwritten. A chunk a backup reuses is touched, which starts its
//     window again.
//   - points/<point> (manifests): removal and overwrite only once older
//     than the window.
//   - indexes/<point>/… and scans/<point>/…: as manifests while the point
//     exists (its manifest is stored); those of a point that was never
//     committed or is forgotten are not part of any restore point.
//   - config and keys/…: never removed or rewritten; a new key file may
//     be added.
//   - locks/…, holds/… and temporary files: not data, passed through
//     (releasing a hold destroys nothing: the window protects the point).
//
// Reading, listing and touching are passed through. It is the layer every
// path of the repository agent goes through (mover requests, forget, gc),
// so no request can bypass it; RemovePoint and GC check ahead and say
// which point is immutable until when.
type Immutable struct {
	be     storage.Backend
	attrs  attrSetter // nil: no file attributes
	window time.Duration
	reason string
	now    func() time.Time
	onAttr func(string, error)

	mu      sync.Mutex
	pending []string // saved since the last Sync, to make immutable after it
}

var _ storage.Backend = (*Immutable)(nil)

// NewImmutable wraps be. Attributes are used only if o.Attributes is set
// and be implements SetImmutable.
func NewImmutable(be storage.Backend, o ImmutableOptions) *Immutable {
	im := &Immutable{be: be, window: o.Window, reason: o.Reason, now: clock.Or(o.Clock).Now, onAttr: o.AttrError}
	if a, ok := be.(attrSetter); ok && o.Attributes {
		im.attrs = a
	}
	if im.onAttr == nil {
		im.onAttr = func(string, error) {}
	}
	return im
}

// Window returns the immutability window.
func (im *Immutable) Window() time.Duration { return im.window }

// Attributes reports whether stored files get the immutable attribute.
func (im *Immutable) Attributes() bool { return im.attrs != nil }

// fileClass is what a name is to the window.
type fileClass int

const (
	classFree     fileClass = iota // locks, holds, anything not data
	classChunk                     // chunks/…
	classManifest                  // points/<point>
	classOfPoint                   // indexes/<point>/…, scans/<point>/…: protected while the point exists
	classKey                       // config, keys/…
)

func classOf(name string) (fileClass, string) {
	top, rest, _ := strings.Cut(name, "/")
	switch top {
	case "chunks":
		return classChunk, ""
	case "points":
		return classManifest, rest
	case "indexes", "scans":
		point, _, _ := strings.Cut(rest, "/")
		return classOfPoint, point
	case "keys", configFile:
		return classKey, ""
	}
	return classFree, ""
}

// flagged reports whether the class gets the immutable attribute.
func (c fileClass) flagged() bool { return c == classChunk || c == classManifest || c == classOfPoint }

// young returns the refusal for what on name if the window protects it
// now, nil if it may be deleted or overwritten (or does not exist).
func (im *Immutable) young(ctx context.Context, what, name string) error {
	class, point := classOf(name)
	switch class {
	case classFree:
		return nil
	case classKey:
		if _, err := im.be.Stat(ctx, name); errors.Is(err, storage.ErrNotExist) {
			return nil
		}
		return &storage.ImmutableError{What: what + " " + name,
			Reason: "a hardened repository never removes or rewrites its config or key files (a new key file may be added)"}
	case classOfPoint:
		if _, err := im.be.Stat(ctx, manifestName(point)); errors.Is(err, storage.ErrNotExist) {
			return nil // not part of a restore point
		}
	}
	st, err := im.be.Stat(ctx, name)
	if errors.Is(err, storage.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if until := st.ModTime.Add(im.window); im.now().Before(until) {
		return &storage.ImmutableError{What: what + " " + name, Written: st.ModTime, Until: until, Reason: im.reason}
	}
	return nil
}

// CheckPoint refuses, naming the point and the time it becomes
// deletable, to forget a point whose manifest is younger than the window.
func (im *Immutable) CheckPoint(ctx context.Context, m *Manifest) error {
	err := im.young(ctx, "forget", manifestName(m.ID))
	var ie *storage.ImmutableError
	if errors.As(err, &ie) {
		ie.What = "forget point " + m.ID
		if m.VM != "" {
			ie.What += " of VM " + m.VM
		}
	}
	return err
}

// withAttr runs op; if it failed on a file with the immutable attribute
// (one this backend may change, checked by the caller), it clears the
// attribute and runs op again.
func (im *Immutable) withAttr(name string, op func() error) error {
	err := op()
	if err == nil || im.attrs == nil || !(errors.Is(err, storage.ErrImmutable) || errors.Is(err, fs.ErrPermission)) {
		return err
	}
	if cerr := im.attrs.SetImmutable(name, false); cerr != nil {
		return err
	}
	return op()
}

// Save stores new files; an existing chunk is kept as it is, other
// existing data only replaced once older than the window.
func (im *Immutable) Save(ctx context.Context, name string, data []byte) error {
	class, _ := classOf(name)
	if class == classFree {
		return im.be.Save(ctx, name, data)
	}
	if class == classChunk {
		if _, err := im.be.Stat(ctx, name); err == nil {
			return nil // content-addressed: the stored copy is the same chunk
		}
	}
	if err := im.young(ctx, "overwrite", name); err != nil {
		return err
	}
	if err := im.withAttr(name, func() error { return im.be.Save(ctx, name, data) }); err != nil {
		return err
	}
	if class.flagged() {
		return im.pend(ctx, name)
	}
	return nil
}

// pend remembers a saved file to make immutable after the next Sync.
func (im *Immutable) pend(ctx context.Context, name string) error {
	if im.attrs == nil {
		return nil
	}
	im.mu.Lock()
	im.pending = append(im.pending, name)
	full := len(im.pending) >= maxPendingAttrs
	im.mu.Unlock()
	if full {
		return im.Sync(ctx)
	}
	return nil
}

// Sync makes earlier writes durable, then sets the immutable attribute of
// the files saved since the last Sync.
func (im *Immutable) Sync(ctx context.Context) error {
	im.mu.Lock()
	names := im.pending
	im.pending = nil
	im.mu.Unlock()
	if err := im.be.Sync(ctx); err != nil {
		im.mu.Lock()
		im.pending = append(im.pending, names...)
		im.mu.Unlock()
		return err
	}
	for _, name := range names {
		if err := im.attrs.SetImmutable(name, true); err != nil && !errors.Is(err, storage.ErrNotExist) {
			im.onAttr(name, err)
		}
	}
	return nil
}

// Remove deletes a file only if the window no longer protects it.
func (im *Immutable) Remove(ctx context.Context, name string) error {
	if err := im.young(ctx, "remove", name); err != nil {
		if !im.duplicateAside(ctx, name) {
			return err
		}
	}
	return im.withAttr(name, func() error { return im.be.Remove(ctx, name) })
}

// duplicateAside reports whether name is a chunk gc moved aside
// ("….gc") that is stored under its own name again: a copy.
func (im *Immutable) duplicateAside(ctx context.Context, name string) bool {
	orig, ok := strings.CutSuffix(name, ".gc")
	if class, _ := classOf(name); !ok || class != classChunk {
		return false
	}
	_, err := im.be.Stat(ctx, orig)
	return err == nil
}

// Rename moves a file only if the window no longer protects it; gc
// putting a chunk it moved aside back under its name is always allowed.
func (im *Immutable) Rename(ctx context.Context, from, to string) error {
	class, _ := classOf(to)
	putBack := class == classChunk && from == to+".gc"
	if !putBack {
		if err := im.young(ctx, "rename", from); err != nil {
			return err
		}
		if tc, _ := classOf(to); tc == classKey {
			return &storage.ImmutableError{What: "rename " + from + " to " + to,
				Reason: "a hardened repository never rewrites its config or key files"}
		}
	}
	if err := im.withAttr(from, func() error { return im.be.Rename(ctx, from, to) }); err != nil {
		return err
	}
	if im.attrs != nil && class.flagged() && !strings.HasSuffix(to, ".gc") {
		if err := im.attrs.SetImmutable(to, true); err != nil {
			im.onAttr(to, err)
		}
	}
	return nil
}

// Touch sets the modification time to now, which starts a chunk's window
// again; a file with the immutable attribute gets it cleared for the
// touch and set again.
func (im *Immutable) Touch(ctx context.Context, name string) error {
	err := im.be.Touch(ctx, name)
	if err == nil || im.attrs == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	if t, ok := im.attrs.(interface{ TouchImmutable(string) error }); ok {
		return t.TouchImmutable(name)
	}
	if cerr := im.attrs.SetImmutable(name, false); cerr != nil {
		return err
	}
	err = im.be.Touch(ctx, name)
	if serr := im.attrs.SetImmutable(name, true); serr != nil {
		im.onAttr(name, serr)
	}
	return err
}

// Load, Stat, List and Location pass through.
func (im *Immutable) Load(ctx context.Context, name string) ([]byte, error) {
	return im.be.Load(ctx, name)
}

func (im *Immutable) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	return im.be.Stat(ctx, name)
}

func (im *Immutable) List(ctx context.Context, dir string, fn func(storage.FileInfo) error) error {
	return im.be.List(ctx, dir, fn)
}

func (im *Immutable) Location() string { return im.be.Location() }

// RemoveStaleTemp passes gc's clean-up of temporary files through (they
// are not data).
func (im *Immutable) RemoveStaleTemp(ctx context.Context, cutoff time.Time) (int, error) {
	if l, ok := im.be.(interface {
		RemoveStaleTemp(context.Context, time.Time) (int, error)
	}); ok {
		return l.RemoveStaleTemp(ctx, cutoff)
	}
	return 0, nil
}

// RemoveEmptyDirs passes gc's clean-up of empty directories through.
func (im *Immutable) RemoveEmptyDirs(ctx context.Context, dir string) (int, error) {
	if l, ok := im.be.(interface {
		RemoveEmptyDirs(context.Context, string) (int, error)
	}); ok {
		return l.RemoveEmptyDirs(ctx, dir)
	}
	return 0, nil
}

// checkImmutable refuses to remove a point a hardened repository still
// protects, before anything is removed.
func (r *Repository) checkImmutable(ctx context.Context, m *Manifest) error {
	if im, ok := r.be.(*Immutable); ok {
		return im.CheckPoint(ctx, m)
	}
	return nil
}

// immutableGrace is gc's grace on a hardened repository: at least the
// window, so gc keeps what the storage would refuse to delete and says so
// in res; elsewhere grace as asked.
func (r *Repository) immutableGrace(grace time.Duration, start time.Time, res *GCResult) time.Duration {
	im, ok := r.be.(*Immutable)
	if !ok || grace >= im.window {
		return grace
	}
	res.Immutable = fmt.Sprintf("hardened repository: unreferenced data written after %s is kept (immutable for %s, not the %s grace asked for)",
		start.Add(-im.window).UTC().Format("2006-01-02 15:04:05 MST"), im.window, grace)
	return im.window
}
