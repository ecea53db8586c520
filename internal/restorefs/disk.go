package restorefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Defaults of Options.
const (
	DefaultCacheBytes = 256 << 20
	DefaultReadAhead  = 4
	maxReadWorkers    = 4 // read-ahead worker pool
	readBatch         = 8 // chunks of one ReadAt fetched in parallel
)

// Options tune an opened Disk.
type Options struct {
	CacheBytes int64 // bound of decoded chunks kept (LRU); 0: 256 MiB
	ReadAhead  int   // chunks fetched ahead on sequential reads; 0: 4; <0: off
	Logger     *slog.Logger
}

// Stats count a Disk's work since it was opened.
type Stats struct {
	// Hits are chunk reads served by the cache (or by a fetch another
	// reader or read-ahead had already started); Misses are chunk reads
	// that had to fetch.
	Hits   int64 `json:"hits"`
	Misses int64 `json:"misses"`
	// FetchedBytes are decoded chunk bytes loaded from the store, by
	// reads and by read-ahead; FetchedChunks counts them.
	FetchedBytes  int64 `json:"fetched_bytes"`
	FetchedChunks int64 `json:"fetched_chunks"`
	// ReadAheadChunks were fetched by read-ahead; ReadAheadHits of them
	// were then read.
	ReadAheadChunks int64 `json:"read_ahead_chunks"`
	ReadAheadHits   int64 `json:"read_ahead_hits"`
	// ZeroBytes were read from zero chunks, which are never fetched.
	ZeroBytes int64 `json:"zero_bytes"`
	// Errors counts failed chunk fetches.
	Errors int64 `json:"errors"`
	// CacheBytes is what the cache holds now, CachePeakBytes the most it
	// ever held; both stay within Options.CacheBytes.
	CacheBytes     int64 `json:"cache_bytes"`
	CachePeakBytes int64 `json:"cache_peak_bytes"`
}

// Disk is one disk of a restore point, readable at any offset. It is safe
// for concurrent use.
type Disk struct {
	store  repo.ChunkReader
	point  string
	disk   int
	ix     *repo.Index
	cs     int64
	log    *slog.Logger
	cache  *chunkCache
	hasher sync.Pool

	ctx    context.Context // fetches; cancelled by Close
	cancel context.CancelFunc
	closed atomic.Bool
	wg     sync.WaitGroup // read-ahead workers

	ra      int // effective read-ahead in chunks (0: off)
	raJobs  chan raJob
	seqMu   sync.Mutex
	seq     [4]stream // recent sequential streams
	seqNext int

	hits, misses, fetchedBytes, fetchedChunks atomic.Int64
	raChunks, raHits, zeroBytes, errs         atomic.Int64
}

type raJob struct {
	n  uint64
	id repo.ChunkID
}

// stream is one sequential reader: where its last read ended and the
// chunk before which read-ahead has been queued.
type stream struct {
	valid bool
	end   int64
	ahead uint64
}

// OpenDisk opens disk number disk (its position in m.Disks) of restore
// point m. ctx bounds loading the index only; reads run until Close.
func OpenDisk(ctx context.Context, s repo.PointReader, m *repo.Manifest, disk int, o Options) (*Disk, error) {
	ix, err := s.LoadIndex(ctx, m, disk)
	if err != nil {
		return nil, fmt.Errorf("open disk %d of point %s: %w", disk, m.ID, err)
	}
	return NewDisk(ctx, s, m.ID, disk, ix, o)
}

// NewDisk opens a disk whose index the caller has loaded already; point
// and disk name it in errors. ctx is only the parent of the Disk's
// context: reads run until Close.
func NewDisk(ctx context.Context, s repo.ChunkReader, point string, disk int, ix *repo.Index, o Options) (*Disk, error) {
	if ix.ChunkSize <= 0 {
		return nil, fmt.Errorf("open disk %d of point %s: %w: chunk size %d", disk, point, repo.ErrCorrupt, ix.ChunkSize)
	}
	d := &Disk{store: s, point: point, disk: disk, ix: ix, cs: int64(ix.ChunkSize), log: o.Logger}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.hasher.New = func() any { return s.NewHasher() }
	limit := o.CacheBytes
	if limit == 0 {
		limit = DefaultCacheBytes
	}
	d.cache = newChunkCache(limit, ix.ChunkSize)
	d.ra = o.ReadAhead
	if d.ra == 0 {
		d.ra = DefaultReadAhead
	}
	// The read-ahead window plus the chunk being read (and one more a
	// neighbouring reader may pin) must fit in the cache, or read-ahead
	// would evict what it fetched before it is read.
	if fit := int(limit/d.cs) - 2; d.ra > fit {
		d.ra = fit
	}
	d.ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if d.ra > 0 {
		d.raJobs = make(chan raJob, 2*d.ra)
		for i := 0; i < min(d.ra, maxReadWorkers); i++ {
			d.wg.Add(1)
			go d.readAheadWorker()
		}
	}
	return d, nil
}

// Size returns the disk's size in bytes.
func (d *Disk) Size() int64 { return d.ix.DiskSize }

// ChunkSize returns the chunk size of the disk's index.
func (d *Disk) ChunkSize() int { return d.ix.ChunkSize }

// Index returns the disk's fixed index (read-only; do not modify).
func (d *Disk) Index() *repo.Index { return d.ix }

// NewHasher returns a hasher of the store's chunk IDs, to tell whether
// bytes found elsewhere are a chunk of the disk (one per goroutine).
func (d *Disk) NewHasher() *repo.Hasher { return d.store.NewHasher() }

// Stats returns the disk's counters.
func (d *Disk) Stats() Stats {
	used, peak := d.cache.usage()
	return Stats{
		Hits: d.hits.Load(), Misses: d.misses.Load(),
		FetchedBytes: d.fetchedBytes.Load(), FetchedChunks: d.fetchedChunks.Load(),
		ReadAheadChunks: d.raChunks.Load(), ReadAheadHits: d.raHits.Load(),
		ZeroBytes: d.zeroBytes.Load(), Errors: d.errs.Load(),
		CacheBytes: used, CachePeakBytes: peak,
	}
}

// Close stops read-ahead, cancels fetches in flight and drops the cache.
func (d *Disk) Close() error {
	if d.closed.Swap(true) {
		return nil
	}
	d.cancel()
	d.wg.Wait()
	d.cache.purge()
	return nil
}

// ReadAt reads len(p) bytes at off, like io.ReaderAt: at the end of the
// disk it returns the bytes there are and io.EOF. It is safe for
// concurrent use.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	return d.ReadAtContext(d.ctx, p, off)
}

// ReadAtContext is ReadAt bounded by ctx: a fetch another reader shares
// goes on when ctx ends, but this call returns.
func (d *Disk) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	if d.closed.Load() {
		return 0, ErrClosed
	}
	if off < 0 {
		return 0, fmt.Errorf("read at negative offset %d", off)
	}
	size := d.ix.DiskSize
	if off >= size {
		return 0, io.EOF
	}
	var eof error
	if rest := size - off; int64(len(p)) > rest {
		p, eof = p[:rest], io.EOF
	}
	if len(p) == 0 {
		return 0, eof
	}
	d.noteRead(off, int64(len(p)))
	first := uint64(off / d.cs)
	last := uint64((off + int64(len(p)) - 1) / d.cs)
	for c := first; c <= last; c += readBatch {
		if err := d.readChunks(ctx, p, off, c, min(last, c+readBatch-1)); err != nil {
			return 0, err
		}
	}
	return len(p), eof
}

// pending is one chunk of a read: its entry in the cache (nil for zero
// chunks and private fetches).
type pending struct {
	n    uint64
	id   repo.ChunkID
	data bool
	e    *entry
}

// readChunks fills the part of p (which starts at disk offset off) that
// chunks [from, to] cover. Missing chunks are fetched in parallel.
func (d *Disk) readChunks(ctx context.Context, p []byte, off int64, from, to uint64) error {
	var batch [readBatch]pending
	ps := batch[:0]
	for n := from; n <= to; n++ {
		pd := pending{n: n}
		pd.id, pd.data = d.ix.Lookup(n)
		if pd.data {
			e, load, raHit := d.cache.acquire(n, pd.id, false)
			switch {
			case load:
				d.misses.Add(1)
				go d.load(d.ctx, e)
			case e != nil:
				d.hits.Add(1)
				if raHit {
					d.raHits.Add(1)
				}
			}
			pd.e = e
		}
		ps = append(ps, pd)
	}
	var err error
	for i := range ps {
		if err == nil {
			err = d.copyChunk(ctx, p, off, &ps[i])
		}
		if ps[i].e != nil {
			d.cache.release(ps[i].e)
		}
	}
	return err
}

// copyChunk copies the overlap of chunk pd.n and [off, off+len(p)) into p.
func (d *Disk) copyChunk(ctx context.Context, p []byte, off int64, pd *pending) error {
	cstart := int64(pd.n) * d.cs
	lo := max(cstart, off)
	hi := min(cstart+int64(d.ix.ChunkLen(pd.n)), off+int64(len(p)))
	dst := p[lo-off : hi-off]
	if !pd.data {
		clear(dst)
		d.zeroBytes.Add(int64(len(dst)))
		return nil
	}
	data, err := d.chunkData(ctx, pd)
	if err != nil {
		return err
	}
	copy(dst, data[lo-cstart:])
	return nil
}

// chunkData waits for pd's cache entry, or fetches the chunk into a
// private buffer when the cache had no room for it.
func (d *Disk) chunkData(ctx context.Context, pd *pending) ([]byte, error) {
	if pd.e == nil { // the cache is full of pinned chunks: fetch privately
		d.misses.Add(1)
		return d.fetch(ctx, pd.n, pd.id, make([]byte, d.cs))
	}
	select {
	case <-pd.e.done:
	case <-ctx.Done():
		return nil, d.chunkError(pd.n, pd.id, context.Cause(ctx))
	}
	if pd.e.err != nil {
		return nil, pd.e.err
	}
	if want := d.ix.ChunkLen(pd.n); len(pd.e.data) != want {
		// Shared by ID with another chunk of another length: the index
		// is damaged.
		return nil, d.chunkError(pd.n, pd.id, fmt.Errorf("%w: chunk has %d bytes, expected %d", repo.ErrCorrupt, len(pd.e.data), want))
	}
	return pd.e.data, nil
}

// chunkError names chunk n (id) of the disk in err.
func (d *Disk) chunkError(n uint64, id repo.ChunkID, err error) error {
	if errors.Is(err, context.Canceled) && d.closed.Load() {
		err = ErrClosed
	}
	return fmt.Errorf("point %s disk %d: chunk %d (offset %d, id %s): %w", d.point, d.disk, n, int64(n)*d.cs, id, err)
}

// fetch loads chunk n, whose ID is id, from the store into buf and checks
// its length: the one place every read of a point (ReadAt, Stream,
// ReadChunk) fetches a chunk. Its errors name the point, disk, chunk and
// offset and wrap the store's error (repo.ErrCorrupt for damage,
// repo.ErrMissing for a chunk that is gone).
func (d *Disk) fetch(ctx context.Context, n uint64, id repo.ChunkID, buf []byte) ([]byte, error) {
	h := d.hasher.Get().(*repo.Hasher)
	data, err := d.store.GetChunk(ctx, h, id, buf)
	d.hasher.Put(h)
	if want := d.ix.ChunkLen(n); err == nil && len(data) != want {
		err = fmt.Errorf("%w: chunk has %d bytes, expected %d", repo.ErrCorrupt, len(data), want)
	}
	if err != nil {
		d.errs.Add(1)
		if ctx.Err() == nil {
			d.log.Warn("chunk fetch failed", "point", d.point, "disk", d.disk, "chunk", id.String(), "err", err)
		}
		return nil, d.chunkError(n, id, err)
	}
	d.fetchedBytes.Add(int64(len(data)))
	d.fetchedChunks.Add(1)
	return data, nil
}

// load fills a new cache entry under ctx (the Disk's, for reads: the
// readers sharing it do not depend on the first one's context).
func (d *Disk) load(ctx context.Context, e *entry) {
	data, err := d.fetch(ctx, e.n, e.id, e.buf)
	d.cache.finish(e, data, err)
}
