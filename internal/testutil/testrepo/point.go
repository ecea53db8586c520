package testrepo

import (
	"context"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// CommitPoint stores disks (one raw image each) as point m of r, chunked
// in r's chunk size as a backup stores them, and commits it; an empty
// m.ID gets a new one. m's other fields (VM, Time, Config…) are the
// caller's.
func CommitPoint(t testing.TB, r *repo.Repository, m *repo.Manifest, disks [][]byte) {
	t.Helper()
	ctx := context.Background()
	if m.ID == "" {
		m.ID = r.NewPointID()
	}
	cs := r.Config().ChunkSize
	h := r.NewHasher()
	for i, data := range disks {
		ix := &repo.Index{DiskSize: int64(len(data)), ChunkSize: cs}
		for n := range ix.Chunks() {
			b := data[int(n)*cs : min(len(data), int(n+1)*cs)]
			id := h.Sum(b)
			if _, err := r.PutChunk(ctx, id, b); err != nil {
				t.Fatal(err)
			}
			ix.Entries = append(ix.Entries, repo.IndexEntry{N: n, ID: id})
		}
		hash, err := r.SaveIndex(ctx, m.ID, i, ix)
		if err != nil {
			t.Fatal(err)
		}
		m.Disks = append(m.Disks, repo.DiskManifest{Index: i, Size: ix.DiskSize, ChunkSize: cs, Format: "raw",
			IndexHash: hash, Chunks: len(ix.Entries)})
	}
	if err := r.CommitPoint(ctx, m); err != nil {
		t.Fatal(err)
	}
}
