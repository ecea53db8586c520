package storage

import (
	"context"
	"errors"
	"time"
)

// ErrNotExist is returned (wrapped) when a named file does not exist.
var ErrNotExist = errors.New("does not exist")

// ErrExist is returned (wrapped) by Rename when the target already exists.
var ErrExist = errors.New("already exists")

// FileInfo describes one stored file.
type FileInfo struct {
	Name    string
	Size    int64
	ModTime time.Time
}

// Backend stores named files.
type Backend interface {
	// Save stores data under name atomically, replacing any previous content.
	// The data is durable only after the next successful Sync. Save does not
	// keep data after it returns (callers reuse the buffer).
	Save(ctx context.Context, name string, data []byte) error
	// Sync makes every earlier Save, Rename and Remove durable.
	Sync(ctx context.Context) error
	// Load returns the whole content of name.
	Load(ctx context.Context, name string) ([]byte, error)
	// Stat describes name.
	Stat(ctx context.Context, name string) (FileInfo, error)
	// Touch sets the modification time of name to now; ErrNotExist if absent.
	Touch(ctx context.Context, name string) error
	// Rename moves from to to; ErrExist if to exists, ErrNotExist if from is absent.
	Rename(ctx context.Context, from, to string) error
	// Remove deletes name; removing a missing file is not an error.
	Remove(ctx context.Context, name string) error
	// List calls fn for every file below dir (recursively), in no particular order.
	List(ctx context.Context, dir string, fn func(FileInfo) error) error
	// Location describes the backend for messages (a path or URL without secrets).
	Location() string
}
