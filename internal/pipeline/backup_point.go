package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// PointRequest is one backup session: every disk of one VM into one point.
type PointRequest struct {
	VM        string
	Disks     []source.Disk
	ChunkSize int
	Hostname  string
	Now       func() time.Time // clock; nil means time.Now
	Logger    *slog.Logger     // nil: discard
}

// BackupPoint backs up every disk and commits one restore point. While it
// runs it holds a shared lock so a concurrent GC keeps the chunks it
// reuses. If anything fails nothing is committed; chunks already stored
// stay and are reused by the next backup (or collected by GC).
func BackupPoint(ctx context.Context, sink Sink, req PointRequest, o Options) (*repo.Manifest, error) {
	if err := repo.ValidateVMName(req.VM); err != nil {
		return nil, err
	}
	now := req.Now
	if now == nil {
		now = time.Now
	}
	log := req.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lock, err := sink.Lock(ctx, repo.LockShared)
	if err != nil {
		return nil, err
	}
	defer lock.Release()

	prev, err := previousPoint(ctx, sink, req.VM)
	if err != nil {
		return nil, err
	}
	m := &repo.Manifest{ID: sink.NewPointID(), VM: req.VM, Time: now().UTC(), Hostname: req.Hostname}
	for i, d := range req.Disks {
		job := DiskJob{Disk: d, ChunkSize: req.ChunkSize}
		if prev != nil && i < len(prev.Disks) && prev.Disks[i].Size == d.Size() && prev.Disks[i].ChunkSize == req.ChunkSize {
			if job.Previous, err = sink.LoadIndex(ctx, prev, i); err != nil {
				log.Warn("previous index unusable; backing up without it", "point", prev.ID, "disk", i, "err", err)
				job.Previous = nil
			}
		}
		dm, err := backupOne(ctx, sink, m.ID, i, job, o)
		if err != nil {
			return nil, fmt.Errorf("disk %d (%s): %w", i, d.Describe().Location, err)
		}
		m.Disks = append(m.Disks, dm)
	}
	if err := sink.CommitPoint(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}

func backupOne(ctx context.Context, sink Sink, pointID string, i int, job DiskJob, o Options) (repo.DiskManifest, error) {
	ix, st, err := BackupDisk(ctx, sink, job, o)
	if err != nil {
		return repo.DiskManifest{}, err
	}
	hash, err := sink.SaveIndex(ctx, pointID, i, ix)
	if err != nil {
		return repo.DiskManifest{}, err
	}
	info := job.Disk.Describe()
	return repo.DiskManifest{Index: i, Size: ix.DiskSize, ChunkSize: ix.ChunkSize, Format: info.Format,
		Location: info.Location, IndexHash: hash, Chunks: len(ix.Entries), Stats: st}, nil
}

// previousPoint returns the VM's newest point, or nil.
func previousPoint(ctx context.Context, sink Sink, vm string) (*repo.Manifest, error) {
	ms, err := sink.ListPoints(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].VM == vm {
			return ms[i], nil
		}
	}
	return nil, nil
}
