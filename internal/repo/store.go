package repo

import "context"

// The store vocabulary: the small interfaces through which the rest of
// Holdfast reads and writes a repository. *Repository implements all of
// them; the data mover's Client (a repository on a remote agent) does too,
// so backups, restores and instant recovery run unchanged against either.

// ChunkReader loads chunks.
type ChunkReader interface {
	// NewHasher returns a hasher keyed with the repository's chunk-ID key
	// (one per goroutine).
	NewHasher() *Hasher
	// GetChunk loads, authenticates, decompresses and re-hashes a chunk
	// into dst (reused when large enough).
	GetChunk(ctx context.Context, h *Hasher, id ChunkID, dst []byte) ([]byte, error)
}

// PointReader reads the disks of restore points: their indexes and chunks.
type PointReader interface {
	ChunkReader
	LoadIndex(ctx context.Context, m *Manifest, disk int) (*Index, error)
}

// ChunkStore stores and loads chunks.
type ChunkStore interface {
	ChunkReader
	// TouchChunk reports whether a chunk is stored and protects it from a
	// concurrent GC.
	TouchChunk(ctx context.Context, id ChunkID) (bool, error)
	PutChunk(ctx context.Context, id ChunkID, plain []byte) (int, error)
}

// Sink is where a backup session writes restore points.
type Sink interface {
	ChunkStore
	NewPointID() string
	SaveIndex(ctx context.Context, pointID string, disk int, ix *Index) (ChunkID, error)
	// SaveEncodedIndex saves the index a backup built with an
	// IndexEncoder (spilled to a temporary file, never decoded).
	SaveEncodedIndex(ctx context.Context, pointID string, disk int, enc *IndexEncoder) (ChunkID, error)
	CommitPoint(ctx context.Context, m *Manifest) error
	ListPoints(ctx context.Context) ([]*Manifest, error)
	LoadIndex(ctx context.Context, m *Manifest, disk int) (*Index, error)
	Lock(ctx context.Context, kind string) (*Lock, error)
}

var (
	_ ChunkReader = (*Repository)(nil)
	_ PointReader = (*Repository)(nil)
	_ ChunkStore  = (*Repository)(nil)
	_ Sink        = (*Repository)(nil)
)
