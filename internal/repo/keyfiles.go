package repo

import (
	"context"
	"fmt"
	"sort"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// The repository's files that opening it needs (repository-format.md).
const (
	configFile = "config"
	keysDir    = "keys"
)

// KeyFile is one stored key file: it wraps the master secret with the
// repository password.
type KeyFile struct {
	Name string // storage name, keys/<id>
	Data []byte
}

// ConfigFile returns the config file as stored (what OpenWithKeys takes).
func (r *Repository) ConfigFile(ctx context.Context) ([]byte, error) {
	b, err := r.be.Load(ctx, configFile)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return b, nil
}

// KeyFiles returns every key file as stored, sorted by name (what
// OpenWithKeys takes).
func (r *Repository) KeyFiles(ctx context.Context) ([]KeyFile, error) {
	names, err := keyFileNames(ctx, r.be)
	if err != nil {
		return nil, err
	}
	keys := make([]KeyFile, 0, len(names))
	for _, name := range names {
		b, err := r.be.Load(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		keys = append(keys, KeyFile{Name: name, Data: b})
	}
	return keys, nil
}

// keyFileNames lists the key files, sorted.
func keyFileNames(ctx context.Context, be storage.Backend) ([]string, error) {
	var names []string
	err := be.List(ctx, keysDir, func(fi storage.FileInfo) error {
		names = append(names, fi.Name)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	sort.Strings(names)
	return names, nil
}
