package repo

import (
	"context"
	"fmt"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// BenchmarkImmutableStore measures storing 1 MiB chunks and syncing
// them on plain storage, on a hardened repository's storage without file
// attributes, and with them (root on a file system that has them).
//
//	go test ./internal/repo/ -run '^$' -bench ImmutableStore -benchtime 2000x
func BenchmarkImmutableStore(b *testing.B) {
	for _, mode := range []string{"plain", "window", "window+chattr"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			local := storage.NewLocal(b.TempDir())
			r0, err := Init(ctx, local, nil, InitOptions{ChunkSize: 1 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer r0.Close()
			r := r0
			if mode != "plain" {
				if mode == "window+chattr" {
					if err := local.ProbeImmutable(); err != nil {
						b.Skip(err)
					}
				}
				r = r0.WithBackend(NewImmutable(local, ImmutableOptions{Window: testWindow, Attributes: mode == "window+chattr"}))
				defer func() {
					_ = local.List(ctx, "chunks", func(fi storage.FileInfo) error { return local.SetImmutable(fi.Name, false) })
				}()
			}
			data := chunkData(7, 1<<20)
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				copy(data, fmt.Sprintf("%016d", i))
				if _, err := r.PutChunk(ctx, r.NewHasher().Sum(data), data); err != nil {
					b.Fatal(err)
				}
				if i%256 == 255 {
					if err := r.be.Sync(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := r.be.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkImmutableTouch measures a backup's touch of a chunk it reuses:
// on plain storage, and on a hardened repository's storage where the
// chunk carries the immutable attribute (cleared for the touch and set
// again).
//
//	go test ./internal/repo/ -run '^$' -bench ImmutableTouch
func BenchmarkImmutableTouch(b *testing.B) {
	for _, attrs := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "chattr"}[attrs], func(b *testing.B) {
			ctx := context.Background()
			local := storage.NewLocal(b.TempDir())
			r, err := Init(ctx, local, nil, InitOptions{ChunkSize: MinChunkSize})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			if attrs {
				if err := local.ProbeImmutable(); err != nil {
					b.Skip(err)
				}
				r = r.WithBackend(NewImmutable(local, ImmutableOptions{Window: testWindow, Attributes: true}))
			}
			id := putTestChunk(b, r, chunkData(9, MinChunkSize))
			if err := r.be.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			if attrs {
				defer local.SetImmutable(chunkName(id), false) //nolint:errcheck // best effort for the clean-up
				if on, err := local.IsImmutable(chunkName(id)); err != nil || !on {
					b.Fatalf("chunk not immutable: %v", err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if ok, err := r.TouchChunk(ctx, id); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
	}
}
