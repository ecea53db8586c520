package repo

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/zeebo/blake3"
)

// ChunkID is the keyed BLAKE3-256 hash of a chunk's plain bytes.
type ChunkID [32]byte

// String returns the hex form used in file names and messages.
func (id ChunkID) String() string { return hex.EncodeToString(id[:]) }

// ParseChunkID parses the hex form.
func ParseChunkID(s string) (ChunkID, error) {
	var id ChunkID
	if len(s) != 64 {
		return id, fmt.Errorf("invalid chunk id %q", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil || id.String() != s {
		return ChunkID{}, fmt.Errorf("invalid chunk id %q: want 64 lowercase hex digits", s)
	}
	return id, nil
}

// chunkName is the storage name of a chunk: chunks/<first byte hex>/<id hex>.
func chunkName(id ChunkID) string {
	h := id.String()
	return "chunks/" + h[:2] + "/" + h
}

// Hasher computes chunk IDs; one per goroutine (not safe for concurrent use).
type Hasher struct {
	h *blake3.Hasher
}

// NewHasher returns a hasher keyed with the repository's chunk-ID key.
func (r *Repository) NewHasher() *Hasher {
	h, err := blake3.NewKeyed(r.keys.ChunkID[:])
	if err != nil {
		panic(err) // the key is always 32 bytes
	}
	return &Hasher{h: h}
}

// Sum returns the chunk ID of p.
func (h *Hasher) Sum(p []byte) ChunkID {
	h.h.Reset()
	_, _ = h.h.Write(p)
	var id ChunkID
	h.h.Sum(id[:0])
	return id
}

// TouchChunk reports whether the chunk is stored and, if so, refreshes its
// modification time so that a concurrent GC keeps it (see package doc).
func (r *Repository) TouchChunk(ctx context.Context, id ChunkID) (bool, error) {
	if r.skipTouch() {
		return r.hasChunk(ctx, id)
	}
	err := r.be.Touch(ctx, chunkName(id))
	if err == nil {
		return true, nil
	}
	if errors.Is(err, storage.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("chunk %s: %w", id, err)
}

// PutChunk compresses, encrypts and stores a chunk whose ID the caller
// computed with a Hasher. It returns the stored size.
func (r *Repository) PutChunk(ctx context.Context, id ChunkID, plain []byte) (int, error) {
	if len(plain) > MaxChunkSize {
		return 0, fmt.Errorf("chunk %s: %d bytes exceeds the maximum chunk size", id, len(plain))
	}
	blob := r.codec.seal(kindChunk, id[:], plain)
	defer r.codec.recycle(blob)
	if err := r.saveStamped(ctx, chunkName(id), blob); err != nil {
		return 0, fmt.Errorf("store chunk %s: %w", id, err)
	}
	r.noteChunk(id)
	return len(blob), nil
}

// GetChunk loads, authenticates, decompresses and re-hashes a chunk. dst is
// reused when large enough. A chunk that fails any check is an error
// wrapping ErrCorrupt, a missing one ErrMissing, that names the chunk file.
func (r *Repository) GetChunk(ctx context.Context, h *Hasher, id ChunkID, dst []byte) ([]byte, error) {
	b, err := r.LoadSealedChunk(ctx, id)
	if err != nil {
		return nil, err
	}
	return r.OpenChunk(h, id, b, dst)
}

// LoadSealedChunk returns a chunk's blob as stored, unopened: the
// repository agent serves it so that the backup proxy opens and checks it
// (OpenChunk). A missing chunk is an error wrapping ErrMissing.
func (r *Repository) LoadSealedChunk(ctx context.Context, id ChunkID) ([]byte, error) {
	name := chunkName(id)
	b, err := r.be.Load(ctx, name)
	if err != nil {
		return nil, loadError(name, err)
	}
	return b, nil
}

// OpenChunk authenticates, decompresses and re-hashes a sealed chunk blob
// (it decrypts blob in place). dst is reused when large enough. A blob
// that fails any check is an error wrapping ErrCorrupt that names the
// chunk file.
func (r *Repository) OpenChunk(h *Hasher, id ChunkID, blob, dst []byte) ([]byte, error) {
	plain, err := r.codec.open(blob, kindChunk, id[:], MaxChunkSize, dst)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", chunkName(id), err)
	}
	if h.Sum(plain) != id {
		return nil, fmt.Errorf("%s: %w: content hash does not match its id", chunkName(id), ErrCorrupt)
	}
	return plain, nil
}

// SealChunk compresses and encrypts a chunk into the blob stored under
// chunks/: a backup proxy seals chunks itself so the network between it and
// the repository carries reduced, encrypted data. The caller hands the blob
// to PutSealedChunk (possibly in another process) and may then Recycle it.
func (r *Repository) SealChunk(id ChunkID, plain []byte) ([]byte, error) {
	if len(plain) > MaxChunkSize {
		return nil, fmt.Errorf("chunk %s: %d bytes exceeds the maximum chunk size", id, len(plain))
	}
	return r.codec.seal(kindChunk, id[:], plain), nil
}

// Recycle returns a blob from SealChunk (or a buffer from Buffer) for reuse.
func (r *Repository) Recycle(blob []byte) { r.codec.recycle(blob) }

// Buffer returns a pooled buffer of n bytes (for example to receive a
// sealed chunk into); give it back with Recycle when done.
func (r *Repository) Buffer(n int) []byte { return r.codec.buffer(n)[:n] }

// PutSealedChunk stores a blob sealed by SealChunk with this repository's
// keys. It first opens the blob and re-hashes the plain bytes, so a blob
// that is damaged, sealed with other keys or stored under the wrong ID is
// refused (ErrCorrupt) rather than stored. It returns the stored size.
func (r *Repository) PutSealedChunk(ctx context.Context, h *Hasher, id ChunkID, blob []byte) (int, error) {
	check := r.codec.buffer(len(blob))[:len(blob)]
	copy(check, blob) // open decrypts in place
	dst := r.codec.buffer(MaxChunkSize)
	plain, err := r.codec.open(check, kindChunk, id[:], MaxChunkSize, dst)
	if err != nil {
		r.codec.recycle(check)
		r.codec.recycle(dst)
		return 0, fmt.Errorf("sealed chunk %s: %w", id, err)
	}
	ok := h.Sum(plain) == id
	r.codec.recycle(check)
	r.codec.recycle(dst)
	if !ok {
		return 0, fmt.Errorf("sealed chunk %s: %w: content hash does not match its id", id, ErrCorrupt)
	}
	if err := r.saveStamped(ctx, chunkName(id), blob); err != nil {
		return 0, fmt.Errorf("store chunk %s: %w", id, err)
	}
	r.noteChunk(id)
	return len(blob), nil
}
