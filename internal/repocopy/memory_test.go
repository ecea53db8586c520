package repocopy_test

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repocopy"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/testutil/testrepo"
)

// heapAtSave is a target that records the live heap when a disk's index
// is saved: by then the copy has handled every chunk of the disk.
type heapAtSave struct {
	*repo.Repository
	heap uint64
}

func (h *heapAtSave) record() {
	runtime.GC()
	runtime.GC() // and the buffer pools' victims
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	h.heap = max(h.heap, ms.HeapAlloc)
}

func (h *heapAtSave) SaveIndex(ctx context.Context, id string, disk int, ix *repo.Index) (repo.ChunkID, error) {
	h.record()
	return h.Repository.SaveIndex(ctx, id, disk, ix)
}

func (h *heapAtSave) SaveEncodedIndex(ctx context.Context, id string, disk int, enc *repo.IndexEncoder) (repo.ChunkID, error) {
	h.record()
	return h.Repository.SaveEncodedIndex(ctx, id, disk, enc)
}

// TestCopyMemoryFlat: copying a disk of a million non-zero chunks holds
// no per-chunk state (the indexes are spilled to temporary files and
// streamed): the live heap when its index is saved stays far below the
// 78 bytes per chunk the sorted, decoded indexes took here. The chunks are one
// chunk repeated, so the test moves one chunk and a big index, and the
// copy still restores the same bytes.
func TestCopyMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a million-entry index")
	}
	ctx := context.Background()
	src, dst := testrepo.New(t, nil), testrepo.New(t, nil)
	const n = 1 << 20
	cs := src.Config().ChunkSize
	data := bytes.Repeat([]byte{0xa5}, cs)
	id := src.NewHasher().Sum(data)
	if _, err := src.PutChunk(ctx, id, data); err != nil {
		t.Fatal(err)
	}
	m := &repo.Manifest{ID: src.NewPointID(), VM: "big", Time: t0}
	enc, err := repo.NewIndexEncoder(int64(n)*int64(cs), cs, repo.EncoderOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(n) {
		if err := enc.Add(i, id); err != nil {
			t.Fatal(err)
		}
	}
	hash, err := src.SaveEncodedIndex(ctx, m.ID, 0, enc)
	if err != nil {
		t.Fatal(err)
	}
	_ = enc.Close()
	m.Disks = []repo.DiskManifest{{Size: int64(n) * int64(cs), ChunkSize: cs, IndexHash: hash, Chunks: n}}
	if err := src.CommitPoint(ctx, m); err != nil {
		t.Fatal(err)
	}

	runtime.GC()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	target := &heapAtSave{Repository: dst}
	res, err := repocopy.Copy(ctx, src, target, repocopy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.ChunksSent != 1 || res.Stats.BytesRead != int64(cs) {
		t.Errorf("stats %+v: want the repeated chunk read and sent once", res.Stats)
	}
	grew := int64(target.heap) - int64(before.HeapAlloc)
	// 56: the zstd decoder keeps the last index it decompressed (33 bytes
	// per chunk) until its next use; an index of distinct chunks is
	// stored raw and not even that. Before, 78 bytes per chunk.
	if limit := int64(n) * 56; grew > limit {
		t.Errorf("live heap grew %d MB while copying %d chunks (limit %d MB, %d bytes per chunk)",
			grew>>20, n, limit>>20, grew/n)
	}
	t.Logf("live heap grew %d MB (%d bytes per chunk)", grew>>20, grew/n)
	ms := listPoints(t, dst)
	if len(ms) != 1 || ms[0].Disks[0].Chunks != n {
		t.Fatalf("copied %+v", ms)
	}
	for _, pr := range []struct {
		r repo.PointReader
		m *repo.Manifest
	}{{src, m}, {dst, ms[0]}} { // the first and last chunk: 256 GiB in all
		d, err := restorefs.OpenDisk(ctx, pr.r, pr.m, 0, restorefs.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, off := range []int64{0, d.Size() - int64(cs)} {
			got := make([]byte, cs)
			if _, err := d.ReadAt(got, off); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("point %s at %d: %v, not the chunk", pr.m.ID, off, err)
			}
		}
		_ = d.Close()
	}
}
