package repocopy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Source is the repository points are copied from: *repo.Repository or
// the data mover's client.
type Source interface {
	repo.PointReader
	ListPoints(ctx context.Context) ([]*repo.Manifest, error)
	Config() repo.Config
}

// Target is the repository points are copied to: *repo.Repository or the
// data mover's client.
type Target interface {
	repo.Sink
	Config() repo.Config
}

// ErrConflict means the target holds a point with the ID of a point to
// copy that is not the same point (another VM or time).
var ErrConflict = errors.New("the target has a different restore point with the same ID")

// DefaultWorkers is how many chunks are copied at once by default.
const DefaultWorkers = 4

// Options choose what is copied and how.
type Options struct {
	// VM limits the copy to this VM's points ("": every VM).
	VM string
	// Match, if set, further limits the copy to the points of the VMs it
	// accepts (the server's copy jobs: VM name globs).
	Match func(vm string) bool
	// Points are the references of the points to copy (an ID or unique
	// prefix, "latest", "VM:latest", "VM:latest~N"), resolved among the
	// source's points of VM; empty: every point (of VM).
	Points []string
	// NewerOnly leaves out, per VM, the points no newer than the newest
	// point of that VM the target holds: what retention at the target
	// removed is not copied again (a scheduled copy whose target keeps
	// fewer points than the source).
	NewerOnly bool
	// Workers is how many chunks are read, hashed and sent at once; 0
	// means DefaultWorkers. Memory grows by about one chunk per worker.
	Workers int
	// VerifySample is how many of the chunks sent for each point are
	// fetched back from the target and opened with its keys before the
	// point is committed (0: none).
	VerifySample int
	// Retry governs retries of transient errors.
	Retry RetryPolicy
	// Progress, if set, is updated as the copy runs (the caller may read
	// it from another goroutine).
	Progress *Progress
	Clock    clock.Clock  // nil: the real clock
	Logger   *slog.Logger // nil: discard
}

// Stats count what a copy did.
type Stats struct {
	PointsCopied  int64 `json:"points_copied"`
	PointsSkipped int64 `json:"points_skipped"` // the target had them
	ChunksSent    int64 `json:"chunks_sent"`
	ChunksPresent int64 `json:"chunks_present"` // the target had them
	// ChunksKnown counts the present chunks found through a reference
	// point, without reading them at the source.
	ChunksKnown int64 `json:"chunks_known"`
	BytesRead   int64 `json:"bytes_read"` // plain bytes of the chunks read at the source
	BytesSent   int64 `json:"bytes_sent"` // stored (compressed, encrypted) bytes of the chunks sent
	Retries     int64 `json:"retries"`
}

// Progress is the running count of a copy; safe for concurrent use.
type Progress struct {
	pointsCopied, pointsSkipped      atomic.Int64
	chunksSent, chunksPresent, known atomic.Int64
	bytesRead, bytesSent, retries    atomic.Int64
}

// Snapshot returns the counts so far.
func (p *Progress) Snapshot() Stats {
	return Stats{PointsCopied: p.pointsCopied.Load(), PointsSkipped: p.pointsSkipped.Load(),
		ChunksSent: p.chunksSent.Load(), ChunksPresent: p.chunksPresent.Load(), ChunksKnown: p.known.Load(),
		BytesRead: p.bytesRead.Load(), BytesSent: p.bytesSent.Load(), Retries: p.retries.Load()}
}

// Result is what a copy did.
type Result struct {
	Copied  []*repo.Manifest // the points committed at the target, as committed
	Skipped []string         // the IDs of the selected points the target had already
	Stats   Stats
}

// copier is one run of Copy.
type copier struct {
	src    Source
	dst    Target
	srcID  string
	o      Options
	p      *Progress
	r      *retrier
	log    *slog.Logger
	now    func() time.Time
	shared map[string]pair // points both repositories hold, by ID
}

// pair is one point as each repository holds it.
type pair struct{ src, dst *repo.Manifest }

// Copy copies the selected points that the target lacks, oldest first,
// each committed only once all its chunks and indexes are stored and
// checked. On error the points committed so far stay (Result.Copied) and
// nothing of the failed point is visible.
func Copy(ctx context.Context, src Source, dst Target, o Options) (Result, error) {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	clk := clock.Or(o.Clock)
	c := &copier{src: src, dst: dst, srcID: src.Config().ID, o: o, p: o.Progress, log: o.Logger,
		now: clk.Now, shared: map[string]pair{}}
	c.r = &retrier{p: o.Retry.Or(defaultRetry), clock: clk, log: o.Logger, count: func() { c.p.retries.Add(1) }}
	var res Result
	todo, err := c.plan(ctx, &res)
	if err != nil {
		return res, err
	}
	for _, m := range todo {
		out, err := c.point(ctx, m)
		if err != nil {
			res.Stats = c.p.Snapshot()
			return res, fmt.Errorf("copy point %s (%s): %w", m.ID, m.VM, err)
		}
		c.p.pointsCopied.Add(1)
		c.shared[m.ID] = pair{src: m, dst: out}
		res.Copied = append(res.Copied, out)
		c.log.Info("copied restore point", "point", m.ID, "vm", m.VM)
	}
	res.Stats = c.p.Snapshot()
	return res, nil
}
