package storage

import (
	"context"

	"github.com/holdfast-backup/holdfast/internal/throttle"
)

// ReadLimited returns be with Load paced by b: restores and verify
// --read-data read the repository at most at b's rate (a repository on
// shared or remote storage). Everything else passes through unpaced.
func ReadLimited(be Backend, b *throttle.Bucket) Backend {
	return readLimited{Backend: be, b: b}
}

type readLimited struct {
	Backend
	b *throttle.Bucket
}

func (r readLimited) Load(ctx context.Context, name string) ([]byte, error) {
	data, err := r.Backend.Load(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := r.b.WaitN(ctx, len(data)); err != nil {
		return nil, err
	}
	return data, nil
}

// Unwrap returns the paced backend (for optional interfaces such as Locker).
func (r readLimited) Unwrap() Backend { return r.Backend }

// TouchIsBilled passes the wrapped backend's answer on (see repo's
// no-touch locks).
func (r readLimited) TouchIsBilled() bool {
	b, ok := r.Backend.(interface{ TouchIsBilled() bool })
	return ok && b.TouchIsBilled()
}
