package backends

import (
	"context"
	"errors"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/repo/storage/s3"
)

// Options shape how a location is opened.
type Options struct {
	// Getenv reads credentials and region for object storage (nil: none).
	Getenv func(string) string
	// S3Insecure skips the object store's certificate check.
	S3Insecure bool
}

// IsRemote reports whether location names object storage rather than a
// local directory.
func IsRemote(location string) bool { return s3.IsURL(location) }

// Open returns the backend of location. It does not contact a remote
// store.
func Open(location string, o Options) (storage.Backend, error) {
	if location == "" {
		return nil, errors.New("empty repository location")
	}
	if !s3.IsURL(location) {
		return storage.NewLocal(location), nil
	}
	t, err := s3.ParseURL(location)
	if err != nil {
		return nil, err
	}
	return s3.New(t, s3.Options{Insecure: o.S3Insecure, Getenv: o.Getenv})
}

// Exists reports whether a repository may live at the backend: a local
// root directory exists, a bucket holds a config object. It says no only
// when it knows; an error reaching the store is returned.
func Exists(ctx context.Context, be storage.Backend) (bool, error) {
	if l, ok := be.(*storage.Local); ok {
		return l.Exists(), nil
	}
	_, err := be.Stat(ctx, "config")
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, storage.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("%s: %w", be.Location(), err)
}

// Prepare makes a new repository's place: the bucket of object storage
// (with Object Lock when lock is set); nothing for a directory, which
// Init creates.
func Prepare(ctx context.Context, be storage.Backend, lock bool) error {
	if b, ok := be.(*s3.Backend); ok {
		return b.EnsureBucket(ctx, lock)
	}
	return nil
}
