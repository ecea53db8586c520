package repo

import (
	"context"
	"fmt"
	"math"
	"path"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// pointDisk names one disk of a committed point.
type pointDisk struct {
	m    *Manifest
	disk int
}

// bitmap is one bit per position of a ChunkSet.
type bitmap []uint64

func newBitmap(n int) bitmap    { return make(bitmap, (n+63)/64) }
func (b bitmap) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitmap) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }

// listReferenced streams the chunk listing and marks which chunks of set
// are stored; with sizes, it also records their stored sizes (for
// read-data progress). Chunks outside the set are not kept.
func (r *Repository) listReferenced(ctx context.Context, set *ChunkSet, sizes bool) (bitmap, []uint32, error) {
	present := newBitmap(set.Len())
	var sz []uint32
	if sizes {
		sz = make([]uint32, set.Len())
	}
	mark := func(fi storage.FileInfo) error {
		id, err := ParseChunkID(path.Base(fi.Name))
		if err != nil {
			return nil
		}
		if pos, ok := set.Pos(id); ok {
			present.set(pos)
			if sz != nil {
				sz[pos] = uint32(min(max(fi.Size, 0), math.MaxUint32))
			}
		}
		return nil
	}
	var err error
	if l, ok := r.be.(nameLister); ok && !sizes {
		// Presence only: names, without reading every chunk's inode.
		err = l.ListNames(ctx, "chunks", func(name string) error { return mark(storage.FileInfo{Name: name}) })
	} else {
		err = r.be.List(ctx, "chunks", mark)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("verify: list chunks: %w", err)
	}
	return present, sz, nil
}
