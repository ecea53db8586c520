package mover

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// sessionBackend is the storage the proxy's view of the repository sits
// on (repo.OpenWithKeys). The proxy reads and writes through the Client's
// protocol calls, never through it; it only turns the lock file repo.Lock
// manages into the session: Save starts it, Touch keeps it alive, Remove
// ends it. Everything else is refused.
type sessionBackend struct {
	c *Client
}

var _ storage.Backend = (*sessionBackend)(nil)

// openKeys downloads the config and key files and opens the repository
// from them with the password.
func (c *Client) openKeys(ctx context.Context, password []byte) (*repo.Repository, error) {
	cfg, err := c.do(ctx, call{method: http.MethodGet, path: "config", limit: maxConfigBody})
	if err != nil {
		return nil, fmt.Errorf("fetch repository config: %w", err)
	}
	b, err := c.do(ctx, call{method: http.MethodGet, path: "keys", limit: maxKeysBody})
	if err != nil {
		return nil, fmt.Errorf("fetch repository keys: %w", err)
	}
	var reply keysResponse
	if err := decodeJSON(b, &reply); err != nil {
		return nil, fmt.Errorf("%w: keys reply: %v", ErrProtocol, err)
	}
	keys := make([]repo.KeyFile, 0, len(reply.Keys))
	for _, k := range reply.Keys {
		if !keyNamePattern.MatchString(k.Name) {
			return nil, fmt.Errorf("%w: key file name %q", ErrProtocol, k.Name)
		}
		keys = append(keys, repo.KeyFile{Name: k.Name, Data: k.Data})
	}
	be := &sessionBackend{c: c}
	r, err := repo.OpenWithKeys(be, cfg, keys, password, repo.Options{Clock: c.o.Clock})
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", be.Location(), err)
	}
	return r, nil
}

// isLock tells the lock file repo.Lock writes from the config it may try
// to re-seal (best effort, refused here).
func isLock(name string) bool { return strings.HasPrefix(name, "locks/") }

func (b *sessionBackend) Location() string { return strings.TrimSuffix(b.c.base, "/") }

func (b *sessionBackend) Load(ctx context.Context, name string) ([]byte, error) {
	return nil, fmt.Errorf("load %s: %w", name, errReadOnly)
}

func (b *sessionBackend) List(ctx context.Context, dir string, fn func(storage.FileInfo) error) error {
	return fmt.Errorf("list %s: %w", dir, errReadOnly)
}

func (b *sessionBackend) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	return storage.FileInfo{}, fmt.Errorf("stat %s: %w", name, errReadOnly)
}

func (b *sessionBackend) Save(ctx context.Context, name string, data []byte) error {
	if isLock(name) {
		return b.c.beginSession(ctx, name, data)
	}
	return fmt.Errorf("save %s: %w", name, errReadOnly)
}

func (b *sessionBackend) Touch(ctx context.Context, name string) error {
	if isLock(name) {
		return b.c.keepalive(ctx, name)
	}
	return fmt.Errorf("touch %s: %w", name, errReadOnly)
}

func (b *sessionBackend) Remove(ctx context.Context, name string) error {
	if isLock(name) {
		return b.c.endSession(name)
	}
	return fmt.Errorf("remove %s: %w", name, errReadOnly)
}

func (b *sessionBackend) Sync(ctx context.Context) error { return errReadOnly }

func (b *sessionBackend) Rename(ctx context.Context, from, to string) error {
	return fmt.Errorf("rename %s: %w", from, errReadOnly)
}
