package repo

import (
	"context"
	"errors"
	"path"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// gcCandidate is a chunk file GC may remove, held in about 50 bytes
// rather than a storage.FileInfo's 100 or more: a sweep after a large
// forget can have millions. The name is rebuilt from the ID when it is
// the canonical chunks/<xx>/<id>[.gc]; other names are kept as they are.
type gcCandidate struct {
	id    ChunkID
	size  int64
	aside bool   // the canonical name with ".gc" appended
	name  string // set only for a name that is not canonical
}

func newCandidate(fi storage.FileInfo) gcCandidate {
	c := gcCandidate{size: fi.Size}
	base := strings.TrimSuffix(path.Base(fi.Name), ".gc")
	id, err := ParseChunkID(base)
	if err == nil {
		c.id, c.aside = id, base != path.Base(fi.Name)
		if c.info().Name == fi.Name {
			return c
		}
	}
	return gcCandidate{size: fi.Size, name: fi.Name}
}

// info returns the candidate's name and size (GC re-reads its time).
func (c gcCandidate) info() storage.FileInfo {
	name := c.name
	if name == "" {
		name = chunkName(c.id)
		if c.aside {
			name += ".gc"
		}
	}
	return storage.FileInfo{Name: name, Size: c.size}
}

// nameLister is a backend that lists names without sizes and times
// (storage.Local): a cold listing then reads directories, not inodes.
type nameLister interface {
	ListNames(ctx context.Context, dir string, fn func(name string) error) error
}

// listUnreferenced calls fn for every file under chunks/ except the
// chunks in ref, which GC's sweep keeps whatever their size and time.
// With a nameLister only those others are stat'ed.
func (r *Repository) listUnreferenced(ctx context.Context, ref *ChunkSet, fn func(storage.FileInfo) error) error {
	l, ok := r.be.(nameLister)
	if !ok {
		return r.be.List(ctx, "chunks", func(fi storage.FileInfo) error {
			if id, err := ParseChunkID(path.Base(fi.Name)); err == nil && ref.Has(id) {
				return nil
			}
			return fn(fi)
		})
	}
	return l.ListNames(ctx, "chunks", func(name string) error {
		if id, err := ParseChunkID(path.Base(name)); err == nil && ref.Has(id) {
			return nil
		}
		fi, err := r.be.Stat(ctx, name)
		if errors.Is(err, storage.ErrNotExist) {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		return fn(fi)
	})
}
