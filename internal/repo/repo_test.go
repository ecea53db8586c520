package repo

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

func TestOpenPassword(t *testing.T) {
	ctx := context.Background()
	_, be := newTestRepo(t, true)
	tests := []struct {
		name string
		pw   string
		want error
	}{
		{"right", "secret", nil},
		{"wrong", "nope", ErrWrongPassword},
		{"empty", "", ErrWrongPassword},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Open(ctx, be, []byte(tc.pw), Options{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if err == nil {
				r.Close()
			}
		})
	}
}

func TestOpenMissingAndDouble(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, storage.NewLocal(t.TempDir()), nil, Options{}); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("open empty dir: %v", err)
	}
	_, be := newTestRepo(t, true)
	if _, err := Init(ctx, be, []byte("x"), InitOptions{Encrypted: true, KDF: fastKDF}); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("second init: %v", err)
	}
}

func TestChunkRoundTripAndCorruption(t *testing.T) {
	ctx := context.Background()
	for _, enc := range []bool{true, false} {
		r, be := newTestRepo(t, enc)
		h := r.NewHasher()
		data := bytes.Repeat([]byte("holdfast chunk "), 5000)
		id := h.Sum(data)
		if ok, _ := r.TouchChunk(ctx, id); ok {
			t.Fatal("chunk present before put")
		}
		if _, err := r.PutChunk(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		if ok, err := r.TouchChunk(ctx, id); !ok || err != nil {
			t.Fatalf("touch after put: %v %v", ok, err)
		}
		got, err := r.GetChunk(ctx, h, id, nil)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get: %v", err)
		}
		p := filepath.Join(be.Location(), filepath.FromSlash(chunkName(id)))
		raw, _ := os.ReadFile(p)
		for _, off := range []int{0, 5, 10, 30, len(raw) / 2, len(raw) - 1} {
			bad := bytes.Clone(raw)
			bad[off] ^= 0x40
			if err := os.WriteFile(p, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := r.GetChunk(ctx, h, id, nil); !errors.Is(err, ErrCorrupt) {
				t.Errorf("encrypted=%v flip at %d: err = %v, want ErrCorrupt", enc, off, err)
			}
		}
		if err := os.WriteFile(p, raw[:len(raw)-3], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetChunk(ctx, h, id, nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated chunk: %v", err)
		}
	}
}

func TestIncompressibleStoredRaw(t *testing.T) {
	r, _ := newTestRepo(t, true)
	rnd := make([]byte, 1<<18)
	_, _ = rand.Read(rnd)
	blob := r.codec.seal(kindChunk, nil, rnd)
	if blob[5]&flagZstd != 0 {
		t.Error("random data was stored compressed")
	}
	if len(blob) != blobHeaderLen+len(rnd)+nonceLen+tagLen {
		t.Errorf("raw blob size %d", len(blob))
	}
	blob = r.codec.seal(kindChunk, nil, bytes.Repeat([]byte{1, 2, 3}, 1<<16))
	if blob[5]&flagZstd == 0 {
		t.Error("repetitive data was not compressed")
	}
}

func TestPointCommitListResolveRemove(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t, true)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i, vm := range []string{"vm1", "vm2", "vm1"} {
		ix := &Index{DiskSize: 10 << 20, ChunkSize: MinChunkSize, Entries: []IndexEntry{{N: 3, ID: ChunkID{byte(i)}}}}
		id := r.NewPointID()
		h, err := r.SaveIndex(ctx, id, 0, ix)
		if err != nil {
			t.Fatal(err)
		}
		m := &Manifest{ID: id, VM: vm, Time: base.Add(time.Duration(i) * time.Hour),
			Disks: []DiskManifest{{Index: 0, Size: ix.DiskSize, ChunkSize: ix.ChunkSize, IndexHash: h, Chunks: 1}}}
		if err := r.CommitPoint(ctx, m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// An index without manifest (killed backup) is not a point.
	if _, err := r.SaveIndex(ctx, r.NewPointID(), 0, &Index{DiskSize: 1, ChunkSize: MinChunkSize}); err != nil {
		t.Fatal(err)
	}
	ms, err := r.ListPoints(ctx)
	if err != nil || len(ms) != 3 {
		t.Fatalf("list: %d %v", len(ms), err)
	}
	for ref, want := range map[string]string{"latest": ids[2], "vm2:latest": ids[1], "vm1:latest": ids[2], ids[0][:10]: ids[0],
		"latest~1": ids[1], "vm1:latest~1": ids[0], "vm1:latest~0": ids[2]} {
		m, err := r.ResolvePoint(ctx, ref)
		if err != nil || m.ID != want {
			t.Errorf("resolve %q = %v, %v; want %s", ref, m, err, want)
		}
	}
	for _, ref := range []string{"vm9:latest", "vm1:latest~2", "latest~3"} {
		if _, err := r.ResolvePoint(ctx, ref); !errors.Is(err, ErrPointNotFound) {
			t.Errorf("resolve %q: %v, want not found", ref, err)
		}
	}
	ix, err := r.LoadIndex(ctx, ms[0], 0)
	if err != nil || len(ix.Entries) != 1 || ix.Entries[0].N != 3 {
		t.Fatalf("load index: %+v %v", ix, err)
	}
	if err := r.RemovePoint(ctx, ms[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ResolvePoint(ctx, ids[0]); !errors.Is(err, ErrPointNotFound) {
		t.Errorf("removed point still resolves: %v", err)
	}
}
