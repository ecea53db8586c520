package file

import "sync"

// gtCacheSlots is the number of grain tables kept (2 KiB each normally).
const gtCacheSlots = 64

// gtCache is a direct-mapped cache of grain tables, safe for concurrent use.
type gtCache struct {
	mu    sync.Mutex
	slots [gtCacheSlots]struct {
		index int64
		table []uint32 // nil: empty slot
	}
}

func (c *gtCache) get(i int64) ([]uint32, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[i%gtCacheSlots]
	return s.table, s.table != nil && s.index == i
}

func (c *gtCache) put(i int64, table []uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[i%gtCacheSlots]
	s.index, s.table = i, table
}
