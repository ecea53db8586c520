package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/fsmap"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
)

// PointRequest is one backup session: every disk of one VM into one point.
type PointRequest struct {
	VM        string
	Disks     []source.Disk
	ChunkSize int
	Hostname  string
	Notes     map[string]string // recorded in the manifest (guest quiescing, transport choice)
	Config    *repo.VMConfig    // the VM's configuration, recorded in the manifest
	Clock     clock.Clock       // nil: the real clock
	Logger    *slog.Logger      // nil: discard
	// Exclude leaves out what the guests do not need (free space, swap).
	Exclude fsmap.Options
}

// BackupPoint backs up every disk and commits one restore point. While it
// runs it holds a shared lock so a concurrent GC keeps the chunks it
// reuses. If anything fails nothing is committed; chunks already stored
// stay and are reused by the next backup (or collected by GC).
func BackupPoint(ctx context.Context, sink repo.Sink, req PointRequest, o Options) (*repo.Manifest, error) {
	if err := repo.ValidateVMName(req.VM); err != nil {
		return nil, err
	}
	now := clock.Or(req.Clock).Now
	log := req.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lock, err := sink.Lock(ctx, repo.LockShared)
	if err != nil {
		return nil, err
	}
	defer func() { _ = lock.Release() }()

	prev, err := previousPoint(ctx, sink, req.VM)
	if err != nil {
		return nil, err
	}
	m := &repo.Manifest{ID: sink.NewPointID(), VM: req.VM, Time: now().UTC(), Hostname: req.Hostname, Notes: req.Notes, Config: req.Config}
	for i, d := range req.Disks {
		dm, err := BackupPointDisk(ctx, sink, DiskRequest{PointID: m.ID, Index: i, Disk: d, Previous: prev,
			ChunkSize: req.ChunkSize, Logger: log, Exclude: req.Exclude}, o)
		if err != nil {
			return nil, err
		}
		m.Disks = append(m.Disks, dm)
	}
	if err := sink.CommitPoint(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}

// noPrevious is the CBT verdict of a disk's first backup.
const noPrevious = "full read: no previous restore point of this disk"

// DiskRequest is one disk of a point being written, for BackupPointDisk.
type DiskRequest struct {
	PointID   string
	Index     int // the disk's number in the point
	Disk      source.Disk
	Previous  *repo.Manifest // the VM's previous point, or nil
	ChunkSize int
	Logger    *slog.Logger // nil: discard
	// Exclude leaves out the ranges the guest does not need (free space,
	// swap), found on the point-in-time disk.
	Exclude fsmap.Options
}

// BackupPointDisk backs up one disk of a point being written: it finds the
// disk's previous index and changed extents, stores the chunks and the
// index, and returns the disk's manifest entry. Nothing is committed. The
// distributed mode runs it on proxies for the disks of one point, each in
// the point's shared repository session; BackupPoint runs it for every disk.
func BackupPointDisk(ctx context.Context, sink repo.Sink, req DiskRequest, o Options) (repo.DiskManifest, error) {
	log := req.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	i, d, prev := req.Index, req.Disk, req.Previous
	job, cbt, err := prepareJob(ctx, sink, prev, i, d, req.ChunkSize)
	if err != nil {
		return repo.DiskManifest{}, fmt.Errorf("disk %d (%s): %w", i, d.Describe().Location, err)
	}
	if prev != nil && i < len(prev.Disks) {
		cbt = reReadExcluded(&job, &prev.Disks[i], cbt)
	}
	excluded, exWarnings, err := exclude(ctx, &job, req.Exclude)
	if err != nil {
		return repo.DiskManifest{}, fmt.Errorf("disk %d (%s): %w", i, d.Describe().Location, err)
	}
	for _, w := range exWarnings {
		log.Warn("kept a volume whole", "disk", i, "reason", w)
	}
	dm, err := backupOne(ctx, sink, req.PointID, i, job, o)
	if err != nil {
		return repo.DiskManifest{}, fmt.Errorf("disk %d (%s): %w", i, d.Describe().Location, err)
	}
	if ct, ok := d.(source.ChangeTracker); ok {
		dm.ChangeID = ct.ChangeID()
	}
	dm.Excluded = excluded
	dm.Warnings = append(dm.Warnings, exWarnings...)
	dm.CBT = cbt
	if cbt == "used" {
		dm.ChangeBase = prev.Disks[i].ChangeID
	}
	if strings.HasPrefix(cbt, "full read") && cbt != noPrevious { // a first backup reads everything: no warning
		dm.Warnings = append(dm.Warnings, "changed block tracking not usable, "+cbt)
		log.Warn("changed block tracking not usable; read the whole disk and compared hashes",
			"disk", i, "reason", strings.TrimPrefix(cbt, "full read: "))
	}
	return dm, nil
}

// prepareJob finds the disk's previous index and, for a disk with change
// tracking, the extents changed since then. It returns the CBT verdict
// recorded in the manifest.
func prepareJob(ctx context.Context, sink repo.Sink, prev *repo.Manifest, i int, d source.Disk, chunkSize int) (DiskJob, string, error) {
	job := DiskJob{Disk: d, ChunkSize: chunkSize}
	var prevDisk *repo.DiskManifest
	if prev != nil && i < len(prev.Disks) {
		prevDisk = &prev.Disks[i]
	}
	if prevDisk != nil && prevDisk.Size == d.Size() && prevDisk.ChunkSize == chunkSize {
		ix, err := sink.LoadIndex(ctx, prev, i)
		if err != nil {
			return job, "", err
		}
		job.Previous = ix
	}
	// The previous index is used only with changed extents; loading it
	// also lets a remote repository prefetch its chunks. Without change
	// tracking it is let go at once rather than held through the backup.
	ct, ok := d.(source.ChangeTracker)
	if !ok {
		job.Previous = nil
		return job, "", nil
	}
	switch {
	case prevDisk == nil:
		return job, noPrevious, nil
	case job.Previous == nil:
		return job, fmt.Sprintf("full read: disk size or chunk size changed (%d → %d bytes)", prevDisk.Size, d.Size()), nil
	}
	ch, err := ct.Changed(ctx, prevDisk.ChangeID)
	if err != nil {
		return job, "", fmt.Errorf("changed block tracking: %w", err)
	}
	if !ch.Known {
		job.Previous = nil
		return job, "full read: " + ch.Reason, nil
	}
	job.Changed, job.ChangedKnown = ch.Extents, true
	return job, "used", nil
}

func backupOne(ctx context.Context, sink repo.Sink, pointID string, i int, job DiskJob, o Options) (repo.DiskManifest, error) {
	enc, st, err := backupDisk(ctx, sink, job, o)
	if err != nil {
		return repo.DiskManifest{}, err
	}
	defer enc.Close()
	job.Previous = nil // let the previous index go before the new one is read back and sealed
	size, chunkSize := enc.Geometry()
	count := enc.Count()
	hash, err := sink.SaveEncodedIndex(ctx, pointID, i, enc)
	if err != nil {
		return repo.DiskManifest{}, err
	}
	info := job.Disk.Describe()
	dm := repo.DiskManifest{Index: i, Size: size, ChunkSize: chunkSize, Format: info.Format,
		Location: info.Location, Transport: string(info.Transport), IndexHash: hash, Chunks: count, Stats: st}
	return dm, nil
}

// previousPoint returns the VM's newest point, or nil.
func previousPoint(ctx context.Context, sink repo.Sink, vm string) (*repo.Manifest, error) {
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
