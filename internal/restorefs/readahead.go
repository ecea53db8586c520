package restorefs

import "sort"

// noteRead records a read of [off, off+n) and, when it continues one of
// the recent streams (starts where it ended, or at most one chunk later),
// queues read-ahead of the next d.ra data chunks after it.
func (d *Disk) noteRead(off, n int64) {
	if d.ra <= 0 {
		return
	}
	end := off + n
	d.seqMu.Lock()
	var s *stream
	for i := range d.seq {
		if st := &d.seq[i]; st.valid && off >= st.end && off-st.end <= d.cs {
			s = st
			break
		}
	}
	if s == nil {
		d.seq[d.seqNext] = stream{valid: true, end: end}
		d.seqNext = (d.seqNext + 1) % len(d.seq)
		d.seqMu.Unlock()
		return
	}
	s.end = end
	// The window is the next d.ra data chunks: zero chunks cost nothing
	// to read, so they do not count.
	es := d.ix.Entries
	next := uint64((end-1)/d.cs) + 1
	i := sort.Search(len(es), func(i int) bool { return es[i].N >= next })
	if i == len(es) {
		d.seqMu.Unlock()
		return
	}
	to := es[min(i+d.ra, len(es))-1].N + 1
	from := max(next, s.ahead)
	s.ahead = max(s.ahead, to)
	d.seqMu.Unlock()
	for j := i; j < len(es) && es[j].N < to; j++ {
		if es[j].N < from || d.cache.has(es[j].ID) {
			continue
		}
		select {
		case d.raJobs <- raJob{n: es[j].N, id: es[j].ID}:
		default: // queue full: read-ahead is behind, drop it
			return
		}
	}
}

// readAheadWorker fetches queued chunks into the cache until Close.
func (d *Disk) readAheadWorker() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			return
		case j := <-d.raJobs:
			e, load, _ := d.cache.acquire(j.n, j.id, true)
			if e == nil {
				continue // no room without evicting chunks in use
			}
			if load {
				d.raChunks.Add(1)
				d.load(d.ctx, e)
			}
			d.cache.release(e)
		}
	}
}
