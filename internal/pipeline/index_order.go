package pipeline

import (
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// indexOrder puts the results of a disk's workers, which finish in any
// order, back into chunk order for the index encoder. The dispatcher
// notes each chunk it hands out (dispatched, in increasing order); a
// worker reports it (done); every result at the head of the queue goes to
// the encoder at once. So it holds only the chunks in flight — at most
// the workers plus the task queue — whatever the disk's size. Not safe for
// concurrent use: the disk's mutex guards it.
type indexOrder struct {
	enc     *repo.IndexEncoder
	queue   []uint64 // dispatched chunk numbers not yet encoded, in order
	results map[uint64]orderResult
	err     error
}

type orderResult struct {
	id      repo.ChunkID
	nonZero bool
}

func newIndexOrder(enc *repo.IndexEncoder) indexOrder {
	return indexOrder{enc: enc, results: make(map[uint64]orderResult)}
}

// dispatched notes that chunk n was handed to a worker.
func (o *indexOrder) dispatched(n uint64) { o.queue = append(o.queue, n) }

// done records chunk n's result (nonZero: it has an index entry) and
// encodes every result that is now in order.
func (o *indexOrder) done(n uint64, id repo.ChunkID, nonZero bool) {
	o.results[n] = orderResult{id, nonZero}
	for len(o.queue) > 0 {
		r, ok := o.results[o.queue[0]]
		if !ok {
			return
		}
		delete(o.results, o.queue[0])
		if r.nonZero && o.err == nil {
			o.err = o.enc.Add(o.queue[0], r.id)
		}
		o.queue = o.queue[1:]
	}
}

// pending returns how many results wait for an earlier chunk.
func (o *indexOrder) pending() int { return len(o.results) }

// finish fails if a dispatched chunk never reported or an entry could
// not be encoded.
func (o *indexOrder) finish() error {
	if o.err != nil {
		return o.err
	}
	if len(o.queue) != 0 {
		return fmt.Errorf("index incomplete: chunk %d has no result", o.queue[0])
	}
	return nil
}
