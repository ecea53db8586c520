package fsmap

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/guestdisk"
	"github.com/holdfast-backup/holdfast/internal/guestfs"
)

// ReasonPath is a file's data left out because its path was excluded.
const ReasonPath = "path"

// ValidatePath checks a path given to exclude: not empty, not the root
// (that would be every file), no NUL byte, at most 4096 bytes.
func ValidatePath(p string) error {
	if p == "" || len(p) > 4096 || strings.ContainsRune(p, 0) || path.Clean("/"+p) == "/" {
		return fmt.Errorf("exclude path %q: give a file or directory below the file system's root", p)
	}
	return nil
}

// swapFileNames are where guests keep swap files; --exclude-swap looks
// only there (reading the first page of every file would cost a walk of
// the whole tree).
var swapFileNames = [...]string{"/swapfile", "/swap.img", "/swap/swapfile", "/var/swap", "/var/swapfile"}

// extROSharedBlocks marks an ext4 whose blocks may be shared between files.
const extROSharedBlocks = 0x4000

// fileRanges returns the data of the files under the excluded paths and
// of the swap files' bodies on a consistent ext2/3/4 or xfs volume. A
// file with more than one link is kept (another name may lie outside the
// path), and so is the header page of a file with a swap signature (a
// swap file keeps its header). Blocks the volume shares between files
// (xfs reflinks) make it keep every file.
func fileRanges(ctx context.Context, r io.ReaderAt, v guestdisk.Volume, o Options) ([]Range, error) {
	if err := consistent(r, v); err != nil {
		return nil, err
	}
	fsys, err := guestfs.Open(r, v.Size, v.Content)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errDamaged, err)
	}
	c := &fileCollector{fsys: fsys}
	for _, root := range o.Paths {
		if err := c.walk(ctx, root); err != nil {
			return nil, err
		}
	}
	if o.Swap {
		for _, p := range swapFileNames {
			st, err := fsys.Lstat(p)
			if err != nil || !st.Mode.IsRegular() || st.Nlink != 1 || keepHead(fsys, p) == 0 {
				continue
			}
			if err := c.add(p, ReasonSwap, swapHeader); err != nil {
				return nil, err
			}
		}
	}
	return c.out, nil
}

// fileCollector gathers the data extents of excluded files.
type fileCollector struct {
	fsys *guestfs.FS
	out  []Range
}

// walk adds every regular file with one link at or beneath root; a root
// not on this volume adds nothing.
func (c *fileCollector) walk(ctx context.Context, root string) error {
	err := c.fsys.Walk(root, func(p string, st guestfs.Stat, err error) error {
		if err != nil {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if !st.Mode.IsRegular() || st.Nlink != 1 {
			return nil
		}
		return c.add(p, ReasonPath, keepHead(c.fsys, p))
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, fs.ErrNotExist) && !errors.Is(err, guestfs.ErrCorrupt):
		return nil // not on this volume
	case errors.Is(err, errDamaged):
		return err
	}
	return fmt.Errorf("%w: %v", errDamaged, err)
}

// add adds file p's data from byte skip on.
func (c *fileCollector) add(p string, reason string, skip int64) error {
	exts, err := c.fsys.Extents(p)
	if err != nil {
		return fmt.Errorf("%w: %v", errDamaged, err)
	}
	for _, e := range exts {
		if cut := skip - e.Logical; cut > 0 {
			if cut >= e.Length {
				continue
			}
			e.Physical, e.Length = e.Physical+cut, e.Length-cut
		}
		c.out = append(c.out, Range{Offset: e.Physical, Length: e.Length, Reason: reason})
	}
	if len(c.out) > maxRuns {
		return fmt.Errorf("%w: excluded files in more than %d pieces", errDamaged, maxRuns)
	}
	return nil
}

// keepHead returns how many bytes at the start of a file must be kept:
// the header page of a swap file, else none.
func keepHead(fsys *guestfs.FS, p string) int64 {
	f, err := fsys.Open(p)
	if err != nil || f.Size() < 2*swapHeader {
		return 0
	}
	b := make([]byte, 10)
	if n, _ := f.ReadAt(b, swapHeader-10); n == len(b) && (bytes.Equal(b, []byte("SWAPSPACE2")) || bytes.Equal(b, []byte("SWAP-SPACE"))) {
		return swapHeader
	}
	return 0
}

// consistent checks what the free-space readers check before trusting a
// volume's files: a clean or frozen file system, and for xfs no shared
// blocks (a reflinked extent is another file's data too).
func consistent(r io.ReaderAt, v guestdisk.Volume) error {
	switch v.Content {
	case guestdisk.ContentExt:
		if _, err := readExtSuper(r, v.Size); err != nil {
			return err
		}
		sb := make([]byte, 4)
		if err := readFull(r, v.Size, sb, 1024+0x64); err != nil {
			return err
		}
		if binary.LittleEndian.Uint32(sb)&extROSharedBlocks != 0 {
			return fmt.Errorf("%w: blocks shared between files (shared_blocks)", errDamaged)
		}
		return nil
	case guestdisk.ContentXFS:
		x, err := readXFSSuper(r, v.Size)
		if err != nil {
			return err
		}
		if err := x.logClean(); err != nil {
			return err
		}
		return x.noSharedBlocks()
	}
	return fmt.Errorf("%w: %s", errDamaged, v.Content)
}

// noSharedBlocks checks that every AG's refcount B+tree (reflink file
// systems) is one empty leaf: no block belongs to two files.
func (fs *xfsFS) noSharedBlocks() error {
	be := binary.BigEndian
	for ag := uint64(0); ag < fs.agcount; ag++ {
		agf := make([]byte, fs.sectsize)
		if err := readFull(fs.r, fs.size, agf, int64(ag*fs.agblocks)*fs.bs+fs.sectsize); err != nil {
			return err
		}
		if be.Uint32(agf) != xfsAGFMagic {
			return fmt.Errorf("%w: allocation group %d: bad AGF", errDamaged, ag)
		}
		root, level := uint64(be.Uint32(agf[88:])), be.Uint32(agf[92:])
		if !fs.v5 || root == 0 {
			continue // no refcount tree: no reflink feature
		}
		if level != 1 || root >= fs.agLength(ag) {
			return fmt.Errorf("%w: allocation group %d shares blocks between files (reflink)", errDamaged, ag)
		}
		b := make([]byte, fs.bs)
		if err := readFull(fs.r, fs.size, b, int64(ag*fs.agblocks+root)*fs.bs); err != nil {
			return err
		}
		if string(b[0:4]) != "R3FC" || be.Uint16(b[4:]) != 0 || be.Uint16(b[6:]) != 0 {
			return fmt.Errorf("%w: allocation group %d shares blocks between files (reflink)", errDamaged, ag)
		}
	}
	return nil
}
