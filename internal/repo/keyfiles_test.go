package repo

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// OpenWithKeys opens the repository from the files KeyFiles and ConfigFile
// hand out, as Open does from the backend: the same keys (a chunk stored
// through one opens through the other), the same password errors.
func TestOpenWithKeys(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t, true)
	cfg, err := r.ConfigFile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := r.KeyFiles(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("key files: %d, %v", len(keys), err)
	}
	data := bytes.Repeat([]byte("key files "), 1000)
	id := putTestChunk(t, r, data)
	blob, err := r.LoadSealedChunk(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  []byte
		keys []KeyFile
		pw   string
		want error
	}{
		{"right", cfg, keys, "secret", nil},
		{"wrong password", cfg, keys, "nope", ErrWrongPassword},
		{"no key files", cfg, nil, "secret", ErrCorrupt},
		{"damaged key file", cfg, []KeyFile{{Name: "keys/x", Data: []byte("{")}}, "secret", ErrCorrupt},
		{"damaged config", []byte("{"), keys, "secret", ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := OpenWithKeys(be, tc.cfg, tc.keys, []byte(tc.pw), Options{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			defer o.Close()
			got, err := o.OpenChunk(o.NewHasher(), id, bytes.Clone(blob), nil)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("open chunk through the reopened repository: %v", err)
			}
		})
	}
}

// A missing chunk, loaded sealed, names the chunk and wraps ErrMissing, as
// GetChunk's error does and ChunkLoadError's for chunks loaded elsewhere.
func TestLoadSealedChunkMissing(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t, false)
	id := ChunkID{1, 2, 3}
	_, err := r.LoadSealedChunk(ctx, id)
	if !errors.Is(err, ErrMissing) {
		t.Fatalf("err = %v, want ErrMissing", err)
	}
	if _, gerr := r.GetChunk(ctx, r.NewHasher(), id, nil); gerr.Error() != err.Error() {
		t.Fatalf("GetChunk: %v, LoadSealedChunk: %v", gerr, err)
	}
}
