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

// memVersioned is an in-memory versioned object store with Object Lock,
// enforcing retention against an injected clock (the fake S3 of the unit
// tests: "expired, so deletable" needs time to pass, which a real server
// cannot be asked to do).
type memVersioned struct {
	mu    sync.Mutex
	now   func() time.Time
	files map[string][]*memVersion // oldest first
	seq   int
	// calls counts requests by operation.
	calls map[string]int
}

type memVersion struct {
	id     string
	data   []byte
	mod    time.Time
	ret    storage.Retention
	marker bool
}

func newMemVersioned(now func() time.Time) *memVersioned {
	return &memVersioned{now: now, files: map[string][]*memVersion{}, calls: map[string]int{}}
}

var (
	_ storage.Backend = (*memVersioned)(nil)
	_ storage.Locker  = (*memVersioned)(nil)
)

func (m *memVersioned) add(name string, v *memVersion) {
	m.seq++
	v.id = fmt.Sprintf("v%06d", m.seq)
	v.mod = m.now()
	m.files[name] = append(m.files[name], v)
}

// current is the latest version unless it is a delete marker.
func (m *memVersioned) current(name string) *memVersion {
	vs := m.files[name]
	if len(vs) == 0 || vs[len(vs)-1].marker {
		return nil
	}
	return vs[len(vs)-1]
}

func (m *memVersioned) notExist(name string) error {
	return fmt.Errorf("mem/%s: %w", name, storage.ErrNotExist)
}

func (m *memVersioned) Save(ctx context.Context, name string, data []byte) error {
	return m.SaveLocked(ctx, name, data, storage.Retention{})
}

func (m *memVersioned) SaveLocked(_ context.Context, name string, data []byte, r storage.Retention) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["put"]++
	m.add(name, &memVersion{data: append([]byte(nil), data...), ret: r})
	return nil
}

func (m *memVersioned) Sync(context.Context) error { return nil }

func (m *memVersioned) Load(_ context.Context, name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["get"]++
	v := m.current(name)
	if v == nil {
		return nil, m.notExist(name)
	}
	return append([]byte(nil), v.data...), nil
}

func (m *memVersioned) Stat(_ context.Context, name string) (storage.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["head"]++
	v := m.current(name)
	if v == nil {
		return storage.FileInfo{}, m.notExist(name)
	}
	return storage.FileInfo{Name: name, Size: int64(len(v.data)), ModTime: v.mod}, nil
}

// Touch copies the current version onto itself (a new, unlocked version),
// as the S3 backend does.
func (m *memVersioned) Touch(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["copy"]++
	v := m.current(name)
	if v == nil {
		return m.notExist(name)
	}
	m.add(name, &memVersion{data: v.data})
	return nil
}

func (m *memVersioned) Rename(ctx context.Context, from, to string) error {
	data, err := m.Load(ctx, from)
	if err != nil {
		return err
	}
	if err := m.Save(ctx, to, data); err != nil {
		return err
	}
	return m.Remove(ctx, from)
}

// Remove is a plain DELETE: a delete marker.
func (m *memVersioned) Remove(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["delete"]++
	if len(m.files[name]) > 0 {
		m.add(name, &memVersion{marker: true})
	}
	return nil
}

func (m *memVersioned) List(_ context.Context, dir string, fn func(storage.FileInfo) error) error {
	m.mu.Lock()
	m.calls["list"]++
	var fis []storage.FileInfo
	for name := range m.files {
		if v := m.current(name); v != nil && (dir == "" || strings.HasPrefix(name, strings.Trim(dir, "/")+"/")) {
			fis = append(fis, storage.FileInfo{Name: name, Size: int64(len(v.data)), ModTime: v.mod})
		}
	}
	m.mu.Unlock()
	for _, fi := range fis {
		if err := fn(fi); err != nil {
			return err
		}
	}
	return nil
}

func (m *memVersioned) Location() string { return "mem" }

func (m *memVersioned) Retention(ctx context.Context, name string) (storage.Retention, error) {
	return m.VersionRetention(ctx, name, "")
}

func (m *memVersioned) find(name, id string) *memVersion {
	if id == "" {
		return m.current(name)
	}
	for _, v := range m.files[name] {
		if v.id == id {
			return v
		}
	}
	return nil
}

func (m *memVersioned) VersionRetention(_ context.Context, name, id string) (storage.Retention, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["head"]++
	v := m.find(name, id)
	if v == nil || v.marker {
		return storage.Retention{}, m.notExist(name)
	}
	return v.ret, nil
}

func (m *memVersioned) ExtendRetention(_ context.Context, name string, r storage.Retention) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["retention"]++
	v := m.current(name)
	if v == nil {
		return m.notExist(name)
	}
	if r.Until.Before(v.ret.Until) {
		return nil
	}
	v.ret = r
	return nil
}

func (m *memVersioned) Versions(_ context.Context, dir string, fn func(storage.Version) error) error {
	m.mu.Lock()
	m.calls["list-versions"]++
	dir = strings.Trim(dir, "/")
	var names []string
	for name := range m.files {
		if dir == "" || name == dir || strings.HasPrefix(name, dir+"/") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out []storage.Version
	for _, name := range names {
		vs := m.files[name]
		for i := len(vs) - 1; i >= 0; i-- { // newest first, as S3 lists
			v := vs[i]
			out = append(out, storage.Version{Name: name, VersionID: v.id, Size: int64(len(v.data)), ModTime: v.mod,
				Latest: i == len(vs)-1, DeleteMarker: v.marker})
		}
	}
	m.mu.Unlock()
	for _, v := range out {
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

func (m *memVersioned) RemoveVersion(_ context.Context, name, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls["delete"]++
	vs := m.files[name]
	for i, v := range vs {
		if v.id != id {
			continue
		}
		if v.ret.Locked(m.now()) {
			return fmt.Errorf("mem/%s: %w", name, storage.ErrRetention)
		}
		m.files[name] = append(vs[:i:i], vs[i+1:]...)
		if len(m.files[name]) == 0 {
			delete(m.files, name)
		}
		return nil
	}
	return nil
}

// versions counts the versions (markers included) of name.
func (m *memVersioned) versions(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.files[name])
}
