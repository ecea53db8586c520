package repo

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

func TestSealedChunkRoundTrip(t *testing.T) {
	ctx := context.Background()
	proxy, be := newTestRepo(t, true)
	// The repository agent opens the same repository with the password.
	agent, err := Open(ctx, be, []byte("secret"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	other, _ := newTestRepo(t, true) // different keys

	h := proxy.NewHasher()
	data := bytes.Repeat([]byte("sealed on the proxy "), 4000)
	id := h.Sum(data)
	blob, err := proxy.SealChunk(id, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(blob) >= len(data) {
		t.Errorf("sealed blob %d bytes, not compressed", len(blob))
	}
	tests := []struct {
		name string
		blob func() []byte
		id   ChunkID
		ok   bool
	}{
		{"valid", func() []byte { return bytes.Clone(blob) }, id, true},
		{"wrong id", func() []byte { return bytes.Clone(blob) }, ChunkID{1}, false},
		{"flipped byte", func() []byte { b := bytes.Clone(blob); b[len(b)/2] ^= 1; return b }, id, false},
		{"other keys", func() []byte { b, _ := other.SealChunk(id, data); return b }, id, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := agent.PutSealedChunk(ctx, agent.NewHasher(), tc.id, tc.blob())
			if tc.ok != (err == nil) || (!tc.ok && !errors.Is(err, ErrCorrupt)) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	got, err := agent.GetChunk(ctx, agent.NewHasher(), id, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get after sealed put: %v", err)
	}
}
