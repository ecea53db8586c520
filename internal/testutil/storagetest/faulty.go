package storagetest

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// Op names a Backend method for fault injection and call counts.
type Op string

// The operations a Fault can target.
const (
	OpSave   Op = "save"
	OpSync   Op = "sync"
	OpLoad   Op = "load"
	OpStat   Op = "stat"
	OpTouch  Op = "touch"
	OpRename Op = "rename"
	OpRemove Op = "remove"
	OpList   Op = "list"
)

// ErrInjected is the error of a Fault that names none.
var ErrInjected = errors.New("injected storage fault")

// Fault describes what goes wrong with matching calls: those of Op whose
// name (for Rename the source, for List the directory) starts with Prefix.
// The first Skip matching calls pass, then Times calls fail (0: every one
// after). A failing call returns Err (ErrInjected if nil), except with
// Short or Corrupt, which apply to Load only: it succeeds but returns the
// first half of the content, or the content with its middle byte flipped.
type Fault struct {
	Op      Op
	Prefix  string
	Skip    int
	Times   int
	Err     error
	Short   bool
	Corrupt bool

	seen int // matching calls so far
}

// Faulty wraps a Backend and injects the faults added to it. It is safe
// for concurrent use; faults can be added and cleared while it is in use.
type Faulty struct {
	storage.Backend
	mu     sync.Mutex
	faults []*Fault
	calls  map[Op]int
}

var _ storage.Backend = (*Faulty)(nil)

// NewFaulty wraps b, injecting nothing until faults are added.
func NewFaulty(b storage.Backend) *Faulty { return &Faulty{Backend: b, calls: map[Op]int{}} }

// Add adds a fault; the first added that matches a call decides it.
func (f *Faulty) Add(ft Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &ft)
}

// Clear removes every fault.
func (f *Faulty) Clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
}

// Calls returns how many calls of op were made (failed ones included).
func (f *Faulty) Calls(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// fault counts a call and returns the fault that applies to it, if any.
func (f *Faulty) fault(op Op, name string) *Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[op]++
	for _, ft := range f.faults {
		if ft.Op != op || !strings.HasPrefix(name, ft.Prefix) {
			continue
		}
		ft.seen++
		if ft.seen <= ft.Skip || (ft.Times > 0 && ft.seen > ft.Skip+ft.Times) {
			continue
		}
		c := *ft
		return &c
	}
	return nil
}

func (ft *Fault) err() error {
	if ft.Err != nil {
		return ft.Err
	}
	return ErrInjected
}

// Save stores data unless a fault says otherwise.
func (f *Faulty) Save(ctx context.Context, name string, data []byte) error {
	if ft := f.fault(OpSave, name); ft != nil {
		return ft.err()
	}
	return f.Backend.Save(ctx, name, data)
}

// Sync syncs unless a fault says otherwise.
func (f *Faulty) Sync(ctx context.Context) error {
	if ft := f.fault(OpSync, ""); ft != nil {
		return ft.err()
	}
	return f.Backend.Sync(ctx)
}

// Load loads, fails, or returns a short or corrupted copy.
func (f *Faulty) Load(ctx context.Context, name string) ([]byte, error) {
	ft := f.fault(OpLoad, name)
	if ft != nil && !ft.Short && !ft.Corrupt {
		return nil, ft.err()
	}
	b, err := f.Backend.Load(ctx, name)
	if err != nil || ft == nil {
		return b, err
	}
	if ft.Short {
		b = b[:len(b)/2]
	}
	if ft.Corrupt && len(b) > 0 {
		b[len(b)/2] ^= 0xff
	}
	return b, nil
}

// Stat describes name unless a fault says otherwise.
func (f *Faulty) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if ft := f.fault(OpStat, name); ft != nil {
		return storage.FileInfo{}, ft.err()
	}
	return f.Backend.Stat(ctx, name)
}

// Touch touches name unless a fault says otherwise.
func (f *Faulty) Touch(ctx context.Context, name string) error {
	if ft := f.fault(OpTouch, name); ft != nil {
		return ft.err()
	}
	return f.Backend.Touch(ctx, name)
}

// Rename renames unless a fault (matching from) says otherwise.
func (f *Faulty) Rename(ctx context.Context, from, to string) error {
	if ft := f.fault(OpRename, from); ft != nil {
		return ft.err()
	}
	return f.Backend.Rename(ctx, from, to)
}

// Remove removes name unless a fault says otherwise.
func (f *Faulty) Remove(ctx context.Context, name string) error {
	if ft := f.fault(OpRemove, name); ft != nil {
		return ft.err()
	}
	return f.Backend.Remove(ctx, name)
}

// List lists dir unless a fault says otherwise.
func (f *Faulty) List(ctx context.Context, dir string, fn func(storage.FileInfo) error) error {
	if ft := f.fault(OpList, dir); ft != nil {
		return ft.err()
	}
	return f.Backend.List(ctx, dir, fn)
}
