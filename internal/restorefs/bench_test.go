package restorefs

import (
	"context"
	"io"
	"math/rand/v2"
	"testing"
)

// benchKinds: 64 random chunks (16 MiB of incompressible data).
func benchKinds() []int { return make([]int, 64) }

// BenchmarkSequentialRead reads a whole disk in 1 MiB reads with a cold
// cache: fetch (load, decrypt, decompress, re-hash) throughput with
// read-ahead.
func BenchmarkSequentialRead(b *testing.B) {
	fx := newFixture(b, genImage(b, b.TempDir(), 1, benchKinds(), 0))
	size := int64(len(fx.images[0].data))
	p := make([]byte, 1<<20)
	b.SetBytes(size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := OpenDisk(context.Background(), fx.r, fx.m, 0, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < size; off += int64(len(p)) {
			if _, err := d.ReadAt(p, off); err != nil && err != io.EOF {
				b.Fatal(err)
			}
		}
		d.Close()
	}
}

// BenchmarkRandom4K reads 4 KiB at random offsets with a warm cache.
func BenchmarkRandom4K(b *testing.B) {
	fx := newFixture(b, genImage(b, b.TempDir(), 1, benchKinds(), 0))
	size := int64(len(fx.images[0].data))
	d := fx.open(b, nil, 0, Options{})
	if _, err := d.ReadAt(make([]byte, size), 0); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(4096)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
		p := make([]byte, 4096)
		for pb.Next() {
			if _, err := d.ReadAt(p, rng.Int64N(size/4096)*4096); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
