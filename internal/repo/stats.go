package repo

import (
	"context"
	"fmt"
	"path"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// RepoStats summarises a repository's space use.
type RepoStats struct {
	Points int `json:"points"`
	Disks  int `json:"disks"`
	// LogicalBytes is the sum of the virtual sizes of every disk of every point.
	LogicalBytes int64 `json:"logical_bytes"`
	// DataBytes is the sum of the non-zero bytes of every disk of every point.
	DataBytes int64 `json:"data_bytes"`
	// UniqueChunks / UniqueBytes: distinct referenced chunks and their plain size.
	UniqueChunks int   `json:"unique_chunks"`
	UniqueBytes  int64 `json:"unique_bytes"`
	// StoredBytes is the size of every stored chunk file; MetadataBytes of
	// manifests and indexes.
	StoredBytes   int64 `json:"stored_bytes"`
	MetadataBytes int64 `json:"metadata_bytes"`
	// DedupRatio = DataBytes / UniqueBytes; CompressionRatio = UniqueBytes / StoredBytes.
	DedupRatio       float64 `json:"dedup_ratio"`
	CompressionRatio float64 `json:"compression_ratio"`
}

// Stats reads every manifest and index and lists the stored files.
func (r *Repository) Stats(ctx context.Context) (RepoStats, error) {
	var s RepoStats
	ms, err := r.ListPoints(ctx)
	if err != nil {
		return s, err
	}
	unique := make(map[ChunkID]struct{})
	for _, m := range ms {
		s.Points++
		for d, dm := range m.Disks {
			s.Disks++
			s.LogicalBytes += dm.Size
			ix, err := r.LoadIndex(ctx, m, d)
			if err != nil {
				return s, fmt.Errorf("point %s disk %d: %w", m.ID, d, err)
			}
			for _, e := range ix.Entries {
				n := int64(ix.ChunkLen(e.N))
				s.DataBytes += n
				if _, ok := unique[e.ID]; !ok {
					unique[e.ID] = struct{}{}
					s.UniqueBytes += n
				}
			}
		}
	}
	s.UniqueChunks = len(unique)
	for _, dir := range []string{"chunks", "points", "indexes"} {
		err := r.be.List(ctx, dir, func(fi storage.FileInfo) error {
			if dir != "chunks" {
				s.MetadataBytes += fi.Size
			} else if _, err := ParseChunkID(path.Base(fi.Name)); err == nil {
				s.StoredBytes += fi.Size
			}
			return nil
		})
		if err != nil {
			return s, err
		}
	}
	if s.UniqueBytes > 0 {
		s.DedupRatio = float64(s.DataBytes) / float64(s.UniqueBytes)
	}
	if s.StoredBytes > 0 {
		s.CompressionRatio = float64(s.UniqueBytes) / float64(s.StoredBytes)
	}
	return s, nil
}
