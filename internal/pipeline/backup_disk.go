package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/throttle"
)

// DiskJob is one disk to back up.
type DiskJob struct {
	Disk      source.Disk
	ChunkSize int
	// Previous is this disk's index in the VM's previous point, if its
	// geometry matches. With a changed-extent feed, chunks outside the
	// changed extents are taken from it without reading. (Dedup itself is by
	// content over the whole repository, which includes the previous point.)
	Previous *repo.Index
	// Changed, when ChangedKnown, lists the ranges written since Previous
	// (CBT). Chunks outside them are reused from Previous without reading.
	Changed      []source.Extent
	ChangedKnown bool
}

// Options tune the pipeline.
type Options struct {
	// Workers read, hash and store chunks in parallel; 0 means
	// 2 × GOMAXPROCS (reads overlap with CPU work), and for a full
	// restore at least restoreFetchers.
	Workers int
	// Progress, if set, is called with the number of disk bytes just
	// processed (read, skipped as zero or reused). It must be cheap and
	// safe for concurrent use.
	Progress func(n int64)
	// ReadLimit, if set, paces reads from the source (bytes per second) so
	// a backup does not starve production I/O.
	ReadLimit *throttle.Bucket
	// Timing, if set, accumulates where the workers spent their time
	// (the bottleneck statistic of the distributed mode), on Clock (nil:
	// the real clock).
	Timing *Timing
	Clock  clock.Clock
}

// Timing accumulates the workers' time per stage, in nanoseconds; it is
// safe for concurrent use.
type Timing struct {
	Read atomic.Int64 // reading the source (pacing waits excluded)
	Hash atomic.Int64 // zero check and chunk ID
}

func (o Options) since(c func(*Timing) *atomic.Int64, start time.Time) {
	if o.Timing != nil {
		c(o.Timing).Add(int64(clock.Or(o.Clock).Since(start)))
	}
}

func readStage(t *Timing) *atomic.Int64 { return &t.Read }
func hashStage(t *Timing) *atomic.Int64 { return &t.Hash }

func (o Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return 2 * runtime.GOMAXPROCS(0)
}

func (o Options) progress(n int64) {
	if o.Progress != nil {
		o.Progress(n)
	}
}

// chunkTask is one chunk to read (or reuse) and store.
type chunkTask struct {
	n     uint64
	act   action
	reuse repo.ChunkID
}

// diskBackup holds the state shared by the workers of one disk.
type diskBackup struct {
	store repo.ChunkStore
	job   DiskJob
	opt   Options
	zero  []byte

	mu       sync.Mutex
	order    indexOrder
	stats    repo.Stats
	inflight map[repo.ChunkID]chan struct{} // chunks being stored right now
}

// BackupDisk reads one disk and stores its chunks; it returns the disk's
// index and byte counts. Nothing is committed: the caller saves the index
// and commits the point. (A backup holds the index encoded, see
// backupDisk; this decoded form is for callers that want the entries.)
func BackupDisk(ctx context.Context, store repo.ChunkStore, job DiskJob, o Options) (*repo.Index, repo.Stats, error) {
	enc, st, err := backupDisk(ctx, store, job, o)
	if err != nil {
		return nil, st, err
	}
	defer enc.Close()
	b, err := enc.Bytes()
	if err != nil {
		return nil, st, err
	}
	ix, err := repo.UnmarshalIndex(b)
	return ix, st, err
}

// backupDisk is BackupDisk with the index in its stored form, spilled to
// a temporary file past a few MiB: a backup keeps no memory per non-zero
// chunk. The caller closes the encoder.
func backupDisk(ctx context.Context, store repo.ChunkStore, job DiskJob, o Options) (_ *repo.IndexEncoder, _ repo.Stats, err error) {
	size := job.Disk.Size()
	enc, err := repo.NewIndexEncoder(size, job.ChunkSize, repo.EncoderOptions{})
	if err != nil {
		return nil, repo.Stats{}, err
	}
	defer func() {
		if err != nil {
			_ = enc.Close()
		}
	}()
	alloc, err := job.Disk.Allocated(ctx)
	if err != nil {
		return nil, repo.Stats{}, fmt.Errorf("list allocated extents: %w", err)
	}
	pl := &planner{chunkSize: int64(job.ChunkSize), size: size, alloc: cursor{ext: alloc}}
	if job.ChangedKnown && job.Previous != nil && job.Previous.DiskSize == size && job.Previous.ChunkSize == job.ChunkSize {
		pl.changed, pl.prev = &cursor{ext: job.Changed}, job.Previous
	}
	b := &diskBackup{store: store, job: job, opt: o, zero: make([]byte, job.ChunkSize),
		inflight: make(map[repo.ChunkID]chan struct{}), order: newIndexOrder(enc)}
	chunks := (&repo.Index{DiskSize: size, ChunkSize: job.ChunkSize}).Chunks()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	tasks := make(chan chunkTask, o.workers())
	var wg sync.WaitGroup
	for w := 0; w < o.workers(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.worker(ctx, tasks); err != nil {
				cancel(err)
			}
		}()
	}
	dispatchErr := b.dispatch(ctx, pl, chunks, tasks)
	close(tasks)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, b.stats, err
	}
	if dispatchErr != nil {
		return nil, b.stats, dispatchErr
	}
	if err := b.order.finish(); err != nil {
		return nil, b.stats, err
	}
	return enc, b.stats, nil
}

func (b *diskBackup) dispatch(ctx context.Context, pl *planner, chunks uint64, tasks chan<- chunkTask) error {
	for n := uint64(0); n < chunks; n++ {
		act, id := pl.next(n)
		if act == actZero {
			l := b.chunkLen(n)
			b.mu.Lock()
			b.stats.BytesZero += int64(l)
			b.mu.Unlock()
			b.opt.progress(int64(l))
			continue
		}
		b.mu.Lock()
		b.order.dispatched(n)
		b.mu.Unlock()
		select {
		case tasks <- chunkTask{n: n, act: act, reuse: id}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

func (b *diskBackup) chunkLen(n uint64) int {
	off := int64(n) * int64(b.job.ChunkSize)
	return int(min(int64(b.job.ChunkSize), b.job.Disk.Size()-off))
}

func (b *diskBackup) worker(ctx context.Context, tasks <-chan chunkTask) error {
	h := b.store.NewHasher()
	buf := make([]byte, b.job.ChunkSize)
	for t := range tasks {
		if ctx.Err() != nil {
			continue // drain
		}
		if err := b.process(ctx, h, buf, t); err != nil {
			return err
		}
	}
	return nil
}

func (b *diskBackup) process(ctx context.Context, h *repo.Hasher, buf []byte, t chunkTask) error {
	l := b.chunkLen(t.n)
	var st repo.Stats
	if t.act == actReuse {
		ok, err := b.store.TouchChunk(ctx, t.reuse)
		if err != nil {
			return err
		}
		if ok {
			st.BytesReused = int64(l)
			b.record(t.n, t.reuse, st, l)
			return nil
		}
		// The previous point's chunk is gone (forgotten and collected):
		// fall back to reading this chunk.
	}
	p := buf[:l]
	off := int64(t.n) * int64(b.job.ChunkSize)
	if b.opt.ReadLimit != nil {
		if err := b.opt.ReadLimit.WaitN(ctx, l); err != nil {
			return err
		}
	}
	start := clock.Or(b.opt.Clock).Now()
	if _, err := b.job.Disk.ReadAt(p, off); err != nil && err != io.EOF {
		return fmt.Errorf("read %s at offset %d: %w", b.job.Disk.Describe().Location, off, err)
	}
	b.opt.since(readStage, start)
	st.BytesRead = int64(l)
	start = clock.Or(b.opt.Clock).Now()
	if bytes.Equal(p, b.zero[:l]) {
		st.BytesZero = int64(l)
		b.record(t.n, repo.ChunkID{}, st, l)
		b.opt.since(hashStage, start)
		return nil
	}
	id := h.Sum(p)
	b.opt.since(hashStage, start)
	release, err := b.claim(ctx, id)
	if err != nil {
		return err
	}
	defer release()
	ok, err := b.store.TouchChunk(ctx, id)
	if err != nil {
		return err
	}
	if ok {
		st.BytesReused = int64(l)
	} else {
		stored, err := b.store.PutChunk(ctx, id, p)
		if err != nil {
			return err
		}
		st.BytesNew, st.BytesStored = int64(l), int64(stored)
	}
	b.record(t.n, id, st, l)
	return nil
}

// claim makes identical chunks that several workers hold at once go to the
// store one after the other, so the first stores it and the others find it
// (and count it as reused rather than new).
func (b *diskBackup) claim(ctx context.Context, id repo.ChunkID) (func(), error) {
	for {
		b.mu.Lock()
		ch, busy := b.inflight[id]
		if !busy {
			ch = make(chan struct{})
			b.inflight[id] = ch
		}
		b.mu.Unlock()
		if !busy {
			return func() {
				b.mu.Lock()
				delete(b.inflight, id)
				b.mu.Unlock()
				close(ch)
			}, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// record adds a result; a zero ID with BytesZero set records a zero chunk.
func (b *diskBackup) record(n uint64, id repo.ChunkID, st repo.Stats, l int) {
	b.mu.Lock()
	b.order.done(n, id, st.BytesZero == 0)
	b.stats.Add(st)
	b.mu.Unlock()
	b.opt.progress(int64(l))
}
