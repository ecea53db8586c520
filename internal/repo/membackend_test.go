package repo

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// memBackend is an in-memory storage.Backend for tests that need neither
// files nor real modification times.
type memBackend struct {
	mu    sync.Mutex
	files map[string]memFile
}

type memFile struct {
	data    []byte
	modTime time.Time
}

var _ storage.Backend = (*memBackend)(nil)

func newMemBackend() *memBackend { return &memBackend{files: map[string]memFile{}} }

func (m *memBackend) Save(ctx context.Context, name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[name] = memFile{append([]byte(nil), data...), time.Now()}
	return nil
}

func (m *memBackend) Sync(ctx context.Context) error { return nil }

func (m *memBackend) Load(ctx context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w", name, storage.ErrNotExist)
	}
	return append([]byte(nil), f.data...), nil
}

func (m *memBackend) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[name]
	if !ok {
		return storage.FileInfo{}, fmt.Errorf("%s: %w", name, storage.ErrNotExist)
	}
	return storage.FileInfo{Name: name, Size: int64(len(f.data)), ModTime: f.modTime}, nil
}

func (m *memBackend) Touch(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[name]
	if !ok {
		return fmt.Errorf("%s: %w", name, storage.ErrNotExist)
	}
	f.modTime = time.Now()
	m.files[name] = f
	return nil
}

func (m *memBackend) Rename(ctx context.Context, from, to string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[from]
	if !ok {
		return fmt.Errorf("%s: %w", from, storage.ErrNotExist)
	}
	if _, ok := m.files[to]; ok {
		return fmt.Errorf("%s: %w", to, storage.ErrExist)
	}
	delete(m.files, from)
	m.files[to] = f
	return nil
}

func (m *memBackend) Remove(ctx context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.files, name)
	return nil
}

func (m *memBackend) List(ctx context.Context, dir string, fn func(storage.FileInfo) error) error {
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
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

func (m *memBackend) Location() string { return "mem:" }

// reset removes every file whose name starts with prefix.
func (m *memBackend) reset(prefix string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.files {
		if strings.HasPrefix(name, prefix) {
			delete(m.files, name)
		}
	}
}

// count returns how many files have names starting with prefix.
func (m *memBackend) count(prefix string) int {
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
