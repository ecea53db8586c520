package pipeline

import (
	"context"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/fsmap"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// cbtOmitted is the CBT verdict when the previous point left out ranges
// its manifest does not list.
const cbtOmitted = "full read: the previous point left out more ranges than its manifest lists"

// reReadExcluded makes change tracking treat the chunks the previous point
// left out as changed: they were stored as zeros, and a block that was
// free then may be live now without the guest having written it since
// (change tracking only sees writes). It returns the new CBT verdict.
func reReadExcluded(job *DiskJob, prev *repo.DiskManifest, cbt string) string {
	if !job.ChangedKnown || prev == nil || prev.Excluded == nil {
		return cbt
	}
	if prev.Excluded.ChunksOmitted {
		job.Changed, job.ChangedKnown = nil, false
		return cbtOmitted
	}
	ex := make([]source.Extent, 0, len(prev.Excluded.Chunks))
	for _, r := range prev.Excluded.Chunks {
		ex = append(ex, source.Extent{Offset: r.Offset, Length: r.Length})
	}
	job.Changed = source.Union(job.Changed, ex)
	return cbt
}

// exclude finds the ranges of the point-in-time disk the guest does not
// need and makes the job leave them out. It returns the manifest record
// and the warnings of volumes whose data was all kept.
func exclude(ctx context.Context, job *DiskJob, opt fsmap.Options) (*repo.Excluded, []string, error) {
	if !opt.Any() {
		return nil, nil, nil
	}
	size := job.Disk.Size()
	m, err := fsmap.Find(ctx, job.Disk, size, opt)
	if err != nil {
		return nil, nil, fmt.Errorf("find the ranges to exclude: %w", err)
	}
	ex := make([]source.Extent, 0, len(m.Ranges))
	for _, r := range m.Ranges {
		ex = append(ex, source.Extent{Offset: r.Offset, Length: r.Length})
	}
	job.Disk = source.Excluding(job.Disk, ex)
	rec := &repo.Excluded{Bytes: m.Bytes(), Chunks: chunkRuns(ex, int64(job.ChunkSize), size)}
	if len(rec.Chunks) > repo.MaxExcludedRuns {
		rec.Chunks, rec.ChunksOmitted = nil, true
	}
	warnings := make([]string, 0, len(m.Warnings))
	for _, w := range m.Warnings {
		warnings = append(warnings, "exclude: "+w)
	}
	return rec, warnings, nil
}

// chunkRuns widens ranges to whole chunks and coalesces them: the chunks
// that hold excluded bytes. It stops one run past repo.MaxExcludedRuns.
func chunkRuns(ex []source.Extent, chunk, size int64) []repo.ByteRange {
	var out []repo.ByteRange
	for _, e := range ex {
		start := e.Offset / chunk * chunk
		end := min((e.End()+chunk-1)/chunk*chunk, size)
		if n := len(out); n > 0 && start <= out[n-1].Offset+out[n-1].Length {
			out[n-1].Length = max(out[n-1].Offset+out[n-1].Length, end) - out[n-1].Offset
			continue
		}
		if len(out) > repo.MaxExcludedRuns {
			break
		}
		out = append(out, repo.ByteRange{Offset: start, Length: end - start})
	}
	return out
}
