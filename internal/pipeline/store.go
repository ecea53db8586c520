package pipeline

import (
	"context"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// ChunkStore stores and loads chunks. *repo.Repository implements it.
type ChunkStore interface {
	NewHasher() *repo.Hasher
	// TouchChunk reports whether a chunk is stored and protects it from a
	// concurrent GC.
	TouchChunk(ctx context.Context, id repo.ChunkID) (bool, error)
	PutChunk(ctx context.Context, id repo.ChunkID, plain []byte) (int, error)
	GetChunk(ctx context.Context, h *repo.Hasher, id repo.ChunkID, dst []byte) ([]byte, error)
}

// Sink is where a backup session writes restore points.
type Sink interface {
	ChunkStore
	NewPointID() string
	SaveIndex(ctx context.Context, pointID string, disk int, ix *repo.Index) (repo.ChunkID, error)
	CommitPoint(ctx context.Context, m *repo.Manifest) error
	ListPoints(ctx context.Context) ([]*repo.Manifest, error)
	LoadIndex(ctx context.Context, m *repo.Manifest, disk int) (*repo.Index, error)
	Lock(ctx context.Context, kind string) (*repo.Lock, error)
}

var (
	_ ChunkStore = (*repo.Repository)(nil)
	_ Sink       = (*repo.Repository)(nil)
)
