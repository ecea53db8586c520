package vsphere

import (
	"context"
	"sync"

	"github.com/holdfast-backup/holdfast/internal/source/file"
)

// Network mode pays per request (a round trip, and on the host a lookup
// of the datastore and the file), and the backup pipeline reads a CBT
// area as consecutive chunks, several at once. readAhead turns such runs
// of small sequential reads into fewer, larger requests: a read that
// continues a recent read fetches the rest of its aligned window with one
// request — and the next window too, so that the run's reads do not wait
// for one request at a time — and the reads that fall inside a window wait
// for it instead of asking themselves. A read that continues nothing is
// passed through, so the isolated chunks of an incremental never fetch
// more than asked; a sequential run fetches at most two windows beyond
// its end. At most slots windows are held:
// memory is bounded by slots × window per file, not by the disk.

const (
	readAheadWindow = 4 << 20 // bytes fetched per request for a sequential run
	readAheadSlots  = 8       // windows held per file
	readAheadEnds   = 16      // recent read ends remembered (streams)
)

// readAheadFiles wraps the files a VMDKFiles opens with readAhead.
type readAheadFiles struct {
	files  file.VMDKFiles
	window int64
	slots  int
}

func (r readAheadFiles) OpenFile(ctx context.Context, name string) (file.ExtentFile, error) {
	f, err := r.files.OpenFile(ctx, name)
	if err != nil {
		return nil, err
	}
	return newReadAhead(f, r.window, r.slots), nil
}

type readAhead struct {
	file.ExtentFile
	window int64
	slots  int

	mu      sync.Mutex
	ends    [readAheadEnds]int64 // ends of recent reads; 0 = none
	next    int
	windows []*raWindow // oldest first
}

// raWindow is one large read, in flight until done is closed.
type raWindow struct {
	off  int64
	buf  []byte
	done chan struct{}
	err  error
	used int64 // bytes handed out
}

func newReadAhead(f file.ExtentFile, window int64, slots int) *readAhead {
	return &readAhead{ExtentFile: f, window: window, slots: slots}
}

// ReadAt serves p from a window when it lies in one, starts a window when
// p continues a recent read, and reads directly otherwise.
func (r *readAhead) ReadAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if int64(len(p)) >= r.window || off < 0 || end > r.Size() || len(p) == 0 {
		return r.ExtentFile.ReadAt(p, off)
	}
	r.mu.Lock()
	w := r.covering(off, end)
	if w == nil && r.continues(off) {
		w = r.start(off, end)
	}
	if w != nil { // keep the next window in flight too
		if next := w.off + int64(len(w.buf)); next < r.Size() && r.covering(next, next+1) == nil {
			r.start(next, next)
		}
	}
	r.remember(end)
	r.mu.Unlock()
	if w != nil && w.off+int64(len(w.buf)) < end {
		w = nil // the window stops short (the end of the file or of a slot)
	}
	if w == nil {
		return r.ExtentFile.ReadAt(p, off)
	}
	<-w.done
	if w.err != nil {
		return r.ExtentFile.ReadAt(p, off) // its own request reports or retries
	}
	copy(p, w.buf[off-w.off:])
	r.mu.Lock()
	if w.used += int64(len(p)); w.used >= int64(len(w.buf)) {
		r.drop(w)
	}
	r.mu.Unlock()
	return len(p), nil
}

// covering returns the window holding [off, end), if any.
func (r *readAhead) covering(off, end int64) *raWindow {
	for _, w := range r.windows {
		if w.off <= off && end <= w.off+int64(len(w.buf)) {
			return w
		}
	}
	return nil
}

// continues says whether a recent read ended at off.
func (r *readAhead) continues(off int64) bool {
	for _, e := range r.ends {
		if e == off && off > 0 {
			return true
		}
	}
	return false
}

func (r *readAhead) remember(end int64) {
	r.ends[r.next] = end
	r.next = (r.next + 1) % len(r.ends)
}

// start begins fetching the window from off to the next multiple of
// window (or the end of the file), making room if all slots are taken by
// finished windows; with every slot in flight, or when the window would
// hold no more than [off, end), it starts none.
func (r *readAhead) start(off, end int64) *raWindow {
	wEnd := min((off/r.window+1)*r.window, r.Size())
	if wEnd <= end {
		return nil
	}
	if len(r.windows) >= r.slots {
		evicted := false
		for _, w := range r.windows {
			select {
			case <-w.done:
				r.drop(w)
				evicted = true
			default:
				continue
			}
			break
		}
		if !evicted {
			return nil
		}
	}
	w := &raWindow{off: off, buf: make([]byte, wEnd-off), done: make(chan struct{})}
	r.windows = append(r.windows, w)
	go func() {
		_, w.err = r.ExtentFile.ReadAt(w.buf, w.off)
		if w.err != nil {
			r.mu.Lock()
			r.drop(w)
			r.mu.Unlock()
		}
		close(w.done)
	}()
	return w
}

func (r *readAhead) drop(w *raWindow) {
	for i, x := range r.windows {
		if x == w {
			r.windows = append(r.windows[:i], r.windows[i+1:]...)
			return
		}
	}
}
