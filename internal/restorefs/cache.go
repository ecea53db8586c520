package restorefs

import (
	"container/list"
	"sync"

	"github.com/holdfast-backup/holdfast/internal/repo"
)

// entry is one chunk in the cache: loading until done is closed, then
// holding data (or err, after which it has left the cache).
type entry struct {
	n          uint64 // the chunk whose read loads it (errors name it)
	id         repo.ChunkID
	buf        []byte // capacity is what the cache accounts for
	data       []byte
	err        error
	done       chan struct{}
	refs       int  // readers copying from data; pinned entries stay
	loading    bool // not yet done (never evicted)
	prefetched bool // loaded by read-ahead and not yet read
	elem       *list.Element
}

// chunkCache is an LRU of decoded chunks bounded by bytes. All fields are
// guarded by mu; entry fields too, except data/err, which are written
// once before done is closed.
type chunkCache struct {
	mu        sync.Mutex
	limit     int64
	chunkSize int
	used      int64
	peak      int64
	lru       list.List // front: most recently used
	m         map[repo.ChunkID]*entry
}

func newChunkCache(limit int64, chunkSize int) *chunkCache {
	return &chunkCache{limit: limit, chunkSize: chunkSize, m: make(map[repo.ChunkID]*entry)}
}

// acquire returns the entry for id (chunk n), pinned, and whether the caller must
// load it (then it is new and loading). It returns nil when id is absent
// and no room can be made; the caller then fetches into its own buffer.
// prefetch marks a load by read-ahead; raHit reports that a reader (not
// read-ahead) found a chunk read-ahead loaded, for the first time.
func (c *chunkCache) acquire(n uint64, id repo.ChunkID, prefetch bool) (e *entry, load, raHit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[id]; e != nil {
		e.refs++
		c.lru.MoveToFront(e.elem)
		if !prefetch && e.prefetched {
			e.prefetched = false
			raHit = true
		}
		return e, false, raHit
	}
	buf, ok := c.reserve()
	if !ok {
		return nil, false, false
	}
	e = &entry{n: n, id: id, buf: buf, done: make(chan struct{}), refs: 1, loading: true, prefetched: prefetch}
	e.elem = c.lru.PushFront(e)
	c.m[id] = e
	return e, true, false
}

// has reports whether id is cached or loading.
func (c *chunkCache) has(id repo.ChunkID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id] != nil
}

// reserve makes room for one chunk buffer, evicting unpinned loaded
// entries from the back of the LRU; it reuses an evicted buffer when it
// can. Called with mu held.
func (c *chunkCache) reserve() ([]byte, bool) {
	need := int64(c.chunkSize)
	var reuse []byte
	for c.used+need > c.limit {
		victim := c.victim()
		if victim == nil {
			return nil, false
		}
		c.remove(victim)
		if reuse == nil && cap(victim.buf) >= c.chunkSize {
			reuse = victim.buf
		}
	}
	c.used += need
	if c.used > c.peak {
		c.peak = c.used
	}
	if reuse == nil {
		reuse = make([]byte, c.chunkSize)
	}
	return reuse[:c.chunkSize], true
}

// victim is the least recently used entry that may be evicted.
func (c *chunkCache) victim() *entry {
	for el := c.lru.Back(); el != nil; el = el.Prev() {
		if e := el.Value.(*entry); e.refs == 0 && !e.loading {
			return e
		}
	}
	return nil
}

// remove takes e out of the cache and its bytes out of the account.
// Called with mu held.
func (c *chunkCache) remove(e *entry) {
	if e.elem == nil {
		return
	}
	c.lru.Remove(e.elem)
	e.elem = nil
	delete(c.m, e.id)
	c.used -= int64(c.chunkSize)
}

// finish records the outcome of a load. A failed entry leaves the cache
// at once so the next reader retries; its waiters still see err.
func (c *chunkCache) finish(e *entry, data []byte, err error) {
	c.mu.Lock()
	e.data, e.err = data, err
	e.loading = false
	if err != nil {
		c.remove(e)
	} else if cap(data) > 0 && &data[:1][0] != &e.buf[:1][0] {
		// The store allocated its own buffer rather than fill ours
		// (chunks are never larger than the chunk size it was given).
		e.buf = data
	}
	close(e.done)
	c.mu.Unlock()
}

// release unpins e.
func (c *chunkCache) release(e *entry) {
	c.mu.Lock()
	e.refs--
	c.mu.Unlock()
}

// usage returns the bytes held now and the most ever held.
func (c *chunkCache) usage() (used, peak int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.used, c.peak
}

// purge drops every unpinned entry (Close).
func (c *chunkCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for e := c.victim(); e != nil; e = c.victim() {
		c.remove(e)
	}
}
