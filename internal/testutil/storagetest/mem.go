package storagetest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// Mem is an in-memory storage.Backend. Its modification times come from
// the wall clock.
type Mem struct {
	mu    sync.Mutex
	files map[string]memFile
}

type memFile struct {
	data    []byte
	modTime time.Time
}

var _ storage.Backend = (*Mem)(nil)

// NewMem returns an empty in-memory backend.
func NewMem() *Mem { return &Mem{files: map[string]memFile{}} }

func memNotExist(name string) error { return fmt.Errorf("%s: %w", name, storage.ErrNotExist) }

// Save stores a copy of data.
func (m *Mem) Save(ctx context.Context, name string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[name] = memFile{append([]byte(nil), data...), time.Now()}
	return nil
}

// Sync does nothing: memory is as durable as it gets.
func (m *Mem) Sync(ctx context.Context) error { return ctx.Err() }

// Load returns a copy of the content.
func (m *Mem) Load(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[name]
	if !ok {
		return nil, memNotExist(name)
	}
	return append([]byte(nil), f.data...), nil
}

// Stat describes a file.
func (m *Mem) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[name]
	if !ok {
		return storage.FileInfo{}, memNotExist(name)
	}
	return storage.FileInfo{Name: name, Size: int64(len(f.data)), ModTime: f.modTime}, nil
}

// Touch sets the modification time to now.
func (m *Mem) Touch(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[name]
	if !ok {
		return memNotExist(name)
	}
	f.modTime = time.Now()
	m.files[name] = f
	return nil
}

// Rename moves a file without replacing an existing target.
func (m *Mem) Rename(ctx context.Context, from, to string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[from]
	if !ok {
		return memNotExist(from)
	}
	if _, ok := m.files[to]; ok {
		return fmt.Errorf("%s: %w", to, storage.ErrExist)
	}
	delete(m.files, from)
	m.files[to] = f
	return nil
}

// Remove deletes a file; a missing file is not an error.
func (m *Mem) Remove(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.files, name)
	return nil
}

// List calls fn for the files below dir, in name order.
func (m *Mem) List(ctx context.Context, dir string, fn func(storage.FileInfo) error) error {
	m.mu.Lock()
	var infos []storage.FileInfo
	for name, f := range m.files {
		if strings.HasPrefix(name, dir+"/") {
			infos = append(infos, storage.FileInfo{Name: name, Size: int64(len(f.data)), ModTime: f.modTime})
		}
	}
	m.mu.Unlock()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	for _, fi := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

// Location names the backend.
func (m *Mem) Location() string { return "mem:" }

// Reset removes every file whose name starts with prefix.
func (m *Mem) Reset(prefix string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.files {
		if strings.HasPrefix(name, prefix) {
			delete(m.files, name)
		}
	}
}

// Count returns how many files have names starting with prefix.
func (m *Mem) Count(prefix string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for name := range m.files {
		if strings.HasPrefix(name, prefix) {
			n++
		}
	}
	return n
}
