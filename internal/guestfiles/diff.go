package guestfiles

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"

	"github.com/holdfast-backup/holdfast/internal/guestfs"
	"github.com/holdfast-backup/holdfast/internal/repo"
)

// Change kinds.
const (
	Added   = "added"
	Removed = "removed"
	Changed = "changed"
)

// Change is one entry that differs between two trees.
type Change struct {
	Path    string   `json:"path"`
	Kind    string   `json:"change"`
	Reasons []string `json:"reasons,omitempty"` // type, mode, owner, size, mtime, target, content
}

// maxDiffDepth bounds how deep Diff descends.
const maxDiffDepth = 4096

type differ struct {
	ctx    context.Context
	a, b   *guestfs.FS
	fn     func(Change) error
	seen   [2]map[uint64]bool
	bufs   [2][]byte
	chunks [2]*chunkView // nil: no chunk index to compare
}

// Diff compares the trees under start in a (older) and b (newer), calling
// fn for each entry that differs, in lexical order. Contents are compared
// byte for byte only when type, size and mtime match.
func Diff(ctx context.Context, a, b *guestfs.FS, start string, fn func(Change) error) error {
	return diff(ctx, &differ{a: a, b: b}, start, fn)
}

// DiffVolumes is Diff of two volumes of trees whose disks carry chunk
// indexes (restorefs disks): a file whose data extents lie at the same
// places in both volumes, in chunks with the same IDs, has the same bytes
// and is not read.
func DiffVolumes(ctx context.Context, ta *Tree, va *Volume, tb *Tree, vb *Volume, start string, fn func(Change) error) error {
	d := &differ{a: va.FS, b: vb.FS}
	d.chunks[0], d.chunks[1] = ta.chunkView(va), tb.chunkView(vb)
	if d.chunks[0] == nil || d.chunks[1] == nil {
		d.chunks = [2]*chunkView{}
	}
	return diff(ctx, d, start, fn)
}

func diff(ctx context.Context, d *differ, start string, fn func(Change) error) error {
	a, b := d.a, d.b
	d.ctx, d.fn, d.seen = ctx, fn, [2]map[uint64]bool{{}, {}}
	clean := cleanPath(start)
	sa, errA := a.Lstat(clean)
	sb, errB := b.Lstat(clean)
	switch {
	case errA != nil && errB != nil:
		return errB
	case errA != nil:
		if !errors.Is(errA, fs.ErrNotExist) {
			return errA
		}
		return d.all(b, clean, Added)
	case errB != nil:
		if !errors.Is(errB, fs.ErrNotExist) {
			return errB
		}
		return d.all(a, clean, Removed)
	}
	return d.entry(clean, sa, sb, 0)
}

func cleanPath(p string) string {
	c := path.Clean("/" + p)
	if c == "/" {
		return "."
	}
	return c[1:]
}

// all reports every entry under p of f as kind.
func (d *differ) all(f *guestfs.FS, p string, kind string) error {
	return f.Walk(p, func(q string, _ guestfs.Stat, err error) error {
		if err != nil {
			return err
		}
		return d.fn(Change{Path: "/" + q, Kind: kind})
	})
}

func (d *differ) entry(p string, sa, sb guestfs.Stat, depth int) error {
	if err := d.ctx.Err(); err != nil {
		return err
	}
	reasons, err := d.compare(p, sa, sb)
	if err != nil {
		return err
	}
	if len(reasons) > 0 && p != "." {
		if err := d.fn(Change{Path: "/" + p, Kind: Changed, Reasons: reasons}); err != nil {
			return err
		}
	}
	if !sa.Mode.IsDir() || !sb.Mode.IsDir() {
		return nil
	}
	if depth > maxDiffDepth || d.seen[0][sa.Ino] || d.seen[1][sb.Ino] {
		return fmt.Errorf("/%s: %w: a directory is reached twice (a cycle)", p, guestfs.ErrCorrupt)
	}
	d.seen[0][sa.Ino], d.seen[1][sb.Ino] = true, true
	ea, err := d.a.ReadDirInode(sa.Ino)
	if err != nil {
		return fmt.Errorf("/%s: %w", p, err)
	}
	eb, err := d.b.ReadDirInode(sb.Ino)
	if err != nil {
		return fmt.Errorf("/%s: %w", p, err)
	}
	return d.merge(p, ea, eb, depth)
}

// merge walks two sorted entry lists side by side.
func (d *differ) merge(p string, ea, eb []guestfs.DirEntry, depth int) error {
	i, j := 0, 0
	for i < len(ea) || j < len(eb) {
		var err error
		switch {
		case j >= len(eb) || (i < len(ea) && ea[i].Name < eb[j].Name):
			err = d.all(d.a, path.Join(p, ea[i].Name), Removed)
			i++
		case i >= len(ea) || eb[j].Name < ea[i].Name:
			err = d.all(d.b, path.Join(p, eb[j].Name), Added)
			j++
		default:
			var sa, sb guestfs.Stat
			if sa, err = d.a.Inode(ea[i].Ino); err == nil {
				if sb, err = d.b.Inode(eb[j].Ino); err == nil {
					err = d.entry(path.Join(p, ea[i].Name), sa, sb, depth+1)
				}
			}
			i++
			j++
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *differ) compare(p string, sa, sb guestfs.Stat) ([]string, error) {
	var r []string
	if sa.Mode.Type() != sb.Mode.Type() {
		return []string{"type"}, nil
	}
	if sa.Perm != sb.Perm {
		r = append(r, "mode")
	}
	if sa.UID != sb.UID || sa.GID != sb.GID {
		r = append(r, "owner")
	}
	if sa.Mode.IsDir() {
		return r, nil // a directory's size and times follow its entries
	}
	if sa.Size != sb.Size {
		r = append(r, "size")
	}
	if !sa.Mtime.Equal(sb.Mtime) {
		r = append(r, "mtime")
	}
	switch {
	case sa.Mode&fs.ModeSymlink != 0:
		ta, err := d.a.ReadlinkInode(sa.Ino)
		if err != nil {
			return nil, fmt.Errorf("/%s: %w", p, err)
		}
		tb, err := d.b.ReadlinkInode(sb.Ino)
		if err != nil {
			return nil, fmt.Errorf("/%s: %w", p, err)
		}
		if ta != tb {
			r = append(r, "target")
		}
	case sa.Mode.IsRegular() && len(r) == 0 || sa.Mode.IsRegular() && onlyMeta(r):
		same, err := d.sameContent(sa, sb)
		if err != nil {
			return nil, fmt.Errorf("/%s: %w", p, err)
		}
		if !same {
			r = append(r, "content")
		}
	}
	return r, nil
}

// onlyMeta reports whether reasons hold nothing that already implies the
// content may differ (size, mtime).
func onlyMeta(r []string) bool {
	for _, x := range r {
		if x == "size" || x == "mtime" {
			return false
		}
	}
	return true
}

// sameContent compares two files' bytes.
func (d *differ) sameContent(sa, sb guestfs.Stat) (bool, error) {
	fa, err := d.a.OpenInode(sa.Ino)
	if err != nil {
		return false, err
	}
	fb, err := d.b.OpenInode(sb.Ino)
	if err != nil {
		return false, err
	}
	if d.chunks[0] != nil && sameChunks(d.chunks, fa.Extents(), fb.Extents()) {
		return true, nil
	}
	for i := range d.bufs {
		if d.bufs[i] == nil {
			d.bufs[i] = make([]byte, 1<<20)
		}
	}
	// only where either file has data: a hole in both reads as zeros in
	// both (a sparse file of terabytes is not read hole by hole)
	for _, r := range dataUnion(fa, fb) {
		for off := r.Logical; off < r.Logical+r.Length; off += int64(len(d.bufs[0])) {
			if err := d.ctx.Err(); err != nil {
				return false, err
			}
			n := min(int64(len(d.bufs[0])), r.Logical+r.Length-off)
			na, err := fa.ReadAt(d.bufs[0][:n], off)
			if err != nil && !errors.Is(err, io.EOF) {
				return false, err
			}
			nb, err := fb.ReadAt(d.bufs[1][:n], off)
			if err != nil && !errors.Is(err, io.EOF) {
				return false, err
			}
			if na != nb || !bytes.Equal(d.bufs[0][:na], d.bufs[1][:nb]) {
				return false, nil
			}
		}
	}
	return true, nil
}

// dataRanges are the byte ranges of a file that hold data (its extents,
// or its inline bytes); the rest reads as zeros.
func dataRanges(f *guestfs.File) []guestfs.Extent {
	if f.Inline() {
		if n := f.InlineSize(); n > 0 {
			return []guestfs.Extent{{Length: n}}
		}
		return nil
	}
	return f.Extents()
}

// dataUnion merges the data ranges of two files (in file order) into the
// ranges where either holds data.
func dataUnion(fa, fb *guestfs.File) []guestfs.Extent {
	all := append(dataRanges(fa), dataRanges(fb)...)
	slices.SortFunc(all, func(x, y guestfs.Extent) int { return cmp.Compare(x.Logical, y.Logical) })
	var out []guestfs.Extent
	for _, e := range all {
		if k := len(out); k > 0 && e.Logical <= out[k-1].Logical+out[k-1].Length {
			out[k-1].Length = max(out[k-1].Length, e.Logical+e.Length-out[k-1].Logical)
			continue
		}
		out = append(out, guestfs.Extent{Logical: e.Logical, Length: e.Length})
	}
	return out
}

// indexed is a Disk with a chunk index (restorefs.Disk).
type indexed interface {
	Index() *repo.Index
}

// chunkView is where a volume lies on a disk with a chunk index.
type chunkView struct {
	ix    *repo.Index
	start int64 // the volume's first byte on the disk
}

func (t *Tree) chunkView(v *Volume) *chunkView {
	if v.Disk < 0 || v.Disk >= len(t.disks) {
		return nil // a logical volume: its bytes are not one range of a disk
	}
	d, ok := t.disks[v.Disk].(indexed)
	if !ok || d.Index() == nil || d.Index().ChunkSize <= 0 {
		return nil
	}
	return &chunkView{ix: d.Index(), start: v.Start}
}

// sameChunks reports whether two files' extents lie at the same volume
// offsets of volumes at the same disk offsets, in chunks with the same IDs
// (a zero chunk matches only a zero chunk): then their bytes are equal.
// false means "read and compare".
func sameChunks(cv [2]*chunkView, ea, eb []guestfs.Extent) bool {
	if len(ea) == 0 || len(ea) != len(eb) || cv[0].start != cv[1].start || cv[0].ix.ChunkSize != cv[1].ix.ChunkSize {
		return false
	}
	cs := int64(cv[0].ix.ChunkSize)
	for i := range ea {
		if ea[i] != eb[i] {
			return false
		}
		first, last := (cv[0].start+ea[i].Physical)/cs, (cv[0].start+ea[i].Physical+ea[i].Length-1)/cs
		for n := first; n <= last; n++ {
			ida, oka := cv[0].ix.Lookup(uint64(n))
			idb, okb := cv[1].ix.Lookup(uint64(n))
			if oka != okb || ida != idb {
				return false
			}
		}
	}
	return true
}
