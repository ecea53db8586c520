package pipeline

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// RestoreTarget is where a disk is restored to.
type RestoreTarget struct {
	W io.WriterAt
	// WriteZeros writes zero chunks explicitly (block devices, existing
	// disks); otherwise they are left as holes of a freshly truncated file.
	WriteZeros bool
}

// RestoreStats counts a restore's work.
type RestoreStats struct {
	BytesWritten int64 `json:"bytes_written"`
	BytesZero    int64 `json:"bytes_zero"`
	Chunks       int   `json:"chunks"`
}

// fetch is one chunk in flight: workers fill it, the writer waits on done.
type fetch struct {
	e    repo.IndexEntry
	buf  []byte
	data []byte
	err  error
	done chan struct{}
}

// RestoreDisk writes the disk described by ix to t. Chunks are fetched in
// parallel by workers and written strictly in disk order by one writer;
// at most 2 × workers chunks are in memory.
func RestoreDisk(ctx context.Context, store repo.ChunkStore, ix *repo.Index, t RestoreTarget, o Options) (RestoreStats, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	w := o.workers()
	window := 2 * w
	jobs := make(chan *fetch, window)
	order := make(chan *fetch, window)
	free := make(chan []byte, window)
	for i := 0; i < window; i++ {
		free <- make([]byte, ix.ChunkSize)
	}
	var wg sync.WaitGroup
	for i := 0; i < w; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := store.NewHasher()
			for f := range jobs {
				if ctx.Err() == nil {
					f.data, f.err = store.GetChunk(ctx, h, f.e.ID, f.buf)
					if f.err == nil && len(f.data) != ix.ChunkLen(f.e.N) {
						f.err = fmt.Errorf("chunk %s has %d bytes, expected %d: %w", f.e.ID, len(f.data), ix.ChunkLen(f.e.N), repo.ErrCorrupt)
					}
				} else {
					f.err = context.Cause(ctx)
				}
				close(f.done)
			}
		}()
	}
	go func() {
		defer close(order)
		defer close(jobs)
		for _, e := range ix.Entries {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			f := &fetch{e: e, buf: buf, done: make(chan struct{})}
			jobs <- f
			order <- f
		}
	}()
	st, err := writeInOrder(ctx, ix, t, order, free, o)
	if err != nil {
		cancel(err)
	}
	for range order { // let the dispatcher finish
	}
	wg.Wait()
	return st, err
}

func writeInOrder(ctx context.Context, ix *repo.Index, t RestoreTarget, order <-chan *fetch, free chan<- []byte, o Options) (RestoreStats, error) {
	var st RestoreStats
	var zero []byte
	if t.WriteZeros {
		zero = make([]byte, ix.ChunkSize)
	}
	next := uint64(0) // first chunk not yet accounted for
	fillZeros := func(upto uint64) error {
		for ; next < upto; next++ {
			l := ix.ChunkLen(next)
			if t.WriteZeros {
				if _, err := t.W.WriteAt(zero[:l], int64(next)*int64(ix.ChunkSize)); err != nil {
					return fmt.Errorf("write zeros at %d: %w", int64(next)*int64(ix.ChunkSize), err)
				}
			}
			st.BytesZero += int64(l)
			o.progress(int64(l))
		}
		return nil
	}
	for f := range order {
		<-f.done
		if f.err != nil {
			return st, fmt.Errorf("restore chunk %d (offset %d): %w", f.e.N, int64(f.e.N)*int64(ix.ChunkSize), f.err)
		}
		if err := fillZeros(f.e.N); err != nil {
			return st, err
		}
		off := int64(f.e.N) * int64(ix.ChunkSize)
		if _, err := t.W.WriteAt(f.data, off); err != nil {
			return st, fmt.Errorf("write at offset %d: %w", off, err)
		}
		st.BytesWritten += int64(len(f.data))
		st.Chunks++
		next = f.e.N + 1
		o.progress(int64(len(f.data)))
		free <- f.buf
		if err := ctx.Err(); err != nil {
			return st, context.Cause(ctx)
		}
	}
	if err := ctx.Err(); err != nil {
		return st, context.Cause(ctx)
	}
	return st, fillZeros(ix.Chunks())
}
