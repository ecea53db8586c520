package repo

import (
	"context"
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	ctx := context.Background()
	r, be := newTestRepo(t, false)
	empty, err := r.Stats(ctx)
	if err != nil || empty != (RepoStats{}) {
		t.Fatalf("empty repository: %+v, %v", empty, err)
	}
	const cs = MinChunkSize
	a, b := chunkData(1, cs), chunkData(2, cs)
	c := chunkData(3, cs-1000) // short tail
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// p1: disk 0 = 4 chunks, A at 0 and 1 (dedup inside a disk), B at 3
	//     disk 1 = 1 chunk, all zero
	// p2: disk 0 = 3 chunks with a short tail, A at 0, C at 2
	commitTestPoint(t, r, "vm", at, testDisk{4 * cs, map[uint64][]byte{0: a, 1: a, 3: b}}, testDisk{cs, nil})
	commitTestPoint(t, r, "vm", at.Add(time.Hour), testDisk{3*cs - 1000, map[uint64][]byte{0: a, 2: c}})
	// An uncommitted point's chunk and index count as stored, not as data.
	writeTestIndexes(t, r, "vm", at, testDisk{cs, map[uint64][]byte{0: chunkData(4, cs)}})

	s, err := r.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Random data is stored raw: 28 header bytes per chunk.
	want := RepoStats{
		Points:       2,
		Disks:        3,
		LogicalBytes: 4*cs + cs + 3*cs - 1000,
		DataBytes:    3*cs + 2*cs - 1000,
		UniqueChunks: 3,
		UniqueBytes:  3*cs - 1000,
		StoredBytes:  4*cs - 1000 + 4*blobHeaderLen,
	}
	var meta int64
	for _, dir := range []string{"points", "indexes"} {
		meta += dirBytes(t, be, dir)
	}
	want.MetadataBytes = meta
	want.DedupRatio = float64(want.DataBytes) / float64(want.UniqueBytes)
	want.CompressionRatio = float64(want.UniqueBytes) / float64(want.StoredBytes)
	if s != want {
		t.Errorf("stats\n %+v\nwant\n %+v", s, want)
	}
	if s.DedupRatio < 1.66 || s.DedupRatio > 1.67 || s.CompressionRatio > 0.75 || s.CompressionRatio < 0.74 {
		t.Errorf("ratios %.4f %.4f", s.DedupRatio, s.CompressionRatio)
	}
	if meta < 3*blobHeaderLen {
		t.Errorf("metadata bytes %d", meta)
	}
}

func TestStatsCompressible(t *testing.T) {
	ctx := context.Background()
	r, _ := newTestRepo(t, true)
	zeroish := make([]byte, MinChunkSize)
	zeroish[0] = 1
	commitTestPoint(t, r, "vm", time.Now(), testDisk{MinChunkSize, map[uint64][]byte{0: zeroish}})
	s, err := r.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.UniqueBytes != MinChunkSize || s.StoredBytes <= 0 || s.CompressionRatio < 50 {
		t.Errorf("compressible chunk: %+v", s)
	}
}
