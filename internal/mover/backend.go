package mover

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// keysBackend is the storage the proxy opens the repository on. It lets
// repo.Open read the config and key files fetched from the agent, lets
// repo.GetChunk load sealed chunks from the agent, and turns the lock file
// repo.Lock manages into the session: Save starts it, Touch keeps it alive,
// Remove ends it. Everything else is refused: the proxy writes through the
// Client's protocol calls, never through this backend.
type keysBackend struct {
	c       *Client
	created time.Time
	config  []byte
	keys    map[string][]byte
}

var _ storage.Backend = (*keysBackend)(nil)

// fetchKeys downloads the config and key files.
func (c *Client) fetchKeys(ctx context.Context) (*keysBackend, error) {
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
	be := &keysBackend{c: c, created: c.o.Clock.Now(), config: cfg, keys: make(map[string][]byte)}
	for _, k := range reply.Keys {
		if !keyNamePattern.MatchString(k.Name) {
			return nil, fmt.Errorf("%w: key file name %q", ErrProtocol, k.Name)
		}
		be.keys[k.Name] = k.Data
	}
	return be, nil
}

func (b *keysBackend) Location() string { return strings.TrimSuffix(b.c.base, "/") }

func (b *keysBackend) Load(ctx context.Context, name string) ([]byte, error) {
	if name == "config" {
		return bytes.Clone(b.config), nil
	}
	if k, ok := b.keys[name]; ok {
		return bytes.Clone(k), nil
	}
	if hexID, ok := strings.CutPrefix(name, "chunks/"); ok && len(hexID) == 67 {
		id, err := repo.ParseChunkID(hexID[3:])
		if err != nil || chunkName(id) != name {
			return nil, fmt.Errorf("load %s: %w", name, storage.ErrNotExist)
		}
		return b.c.do(ctx, call{method: http.MethodGet, path: "chunks/" + id.String(), limit: MaxSealedChunk})
	}
	return nil, fmt.Errorf("load %s: %w", name, errReadOnly)
}

func (b *keysBackend) List(ctx context.Context, dir string, fn func(storage.FileInfo) error) error {
	if dir != "keys" {
		return fmt.Errorf("list %s: %w", dir, errReadOnly)
	}
	for name, k := range b.keys {
		if err := fn(storage.FileInfo{Name: name, Size: int64(len(k)), ModTime: b.created}); err != nil {
			return err
		}
	}
	return nil
}

func (b *keysBackend) Stat(ctx context.Context, name string) (storage.FileInfo, error) {
	if name == "config" {
		return storage.FileInfo{Name: name, Size: int64(len(b.config)), ModTime: b.created}, nil
	}
	return storage.FileInfo{}, fmt.Errorf("stat %s: %w", name, errReadOnly)
}

func (b *keysBackend) Save(ctx context.Context, name string, data []byte) error {
	if strings.HasPrefix(name, "locks/") {
		return b.c.beginSession(ctx, name, data)
	}
	return fmt.Errorf("save %s: %w", name, errReadOnly)
}

func (b *keysBackend) Touch(ctx context.Context, name string) error {
	if strings.HasPrefix(name, "locks/") {
		return b.c.keepalive(ctx, name)
	}
	return fmt.Errorf("touch %s: %w", name, errReadOnly)
}

func (b *keysBackend) Remove(ctx context.Context, name string) error {
	if strings.HasPrefix(name, "locks/") {
		return b.c.endSession(name)
	}
	return fmt.Errorf("remove %s: %w", name, errReadOnly)
}

func (b *keysBackend) Sync(ctx context.Context) error { return errReadOnly }

func (b *keysBackend) Rename(ctx context.Context, from, to string) error {
	return fmt.Errorf("rename %s: %w", from, errReadOnly)
}
