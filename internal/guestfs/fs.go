package guestfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// Errors FS methods wrap.
var (
	// ErrCorrupt is wrapped by every error about a damaged structure.
	ErrCorrupt = errors.New("damaged filesystem")
	// ErrUnsupported is a filesystem or feature the readers do not read.
	ErrUnsupported = errors.New("unsupported filesystem")
	// ErrNotExist is a path that is not in the tree (wraps fs.ErrNotExist).
	ErrNotExist = fmt.Errorf("no such file or directory: %w", fs.ErrNotExist)
	// ErrNotDir is a path element that is not a directory.
	ErrNotDir = errors.New("not a directory")
)

// Limits on what one guest structure may make the readers do.
const (
	maxDirEntries  = 1 << 22  // entries in one directory
	maxDirBytes    = 1 << 28  // bytes of one directory read
	maxSymlink     = 4096     // bytes of a symlink's target
	maxLinkHops    = 40       // symlinks followed while resolving one path
	maxExtentNodes = 1 << 18  // extent tree / btree blocks visited for one file
	maxExtents     = 1 << 22  // extents of one file
	maxPathElems   = 4096     // elements of one path
	maxFileSize    = 1 << 60  // bytes a file may claim
	maxNameLen     = 255      // bytes of one directory entry's name
	maxWalkDepth   = 1 << 12  // directory depth Walk descends
	maxTreeDepth   = 8        // levels of an extent tree / bmap btree
	maxInodeBytes  = 1 << 16  // bytes of one on-disk inode
	maxBlockSize   = 1 << 16  // bytes of one filesystem block
	minBlockSize   = 1 << 10  // bytes of one filesystem block
	maxDirBlockLen = 1 << 16  // bytes of one xfs directory block
	leafOffsetXFS  = 32 << 30 // byte offset of an xfs directory's leaf blocks
)

// Stat is an inode's metadata.
type Stat struct {
	Ino   uint64      `json:"ino"`
	Mode  fs.FileMode `json:"-"`    // Go mode: type bits and permissions (setuid, setgid, sticky)
	Perm  uint32      `json:"mode"` // the guest's st_mode (type and permission bits)
	UID   uint32      `json:"uid"`
	GID   uint32      `json:"gid"`
	Size  int64       `json:"size"`
	Nlink uint32      `json:"nlink"`
	Atime time.Time   `json:"atime"`
	Mtime time.Time   `json:"mtime"`
	Ctime time.Time   `json:"ctime"`
	Rdev  uint32      `json:"rdev,omitempty"` // device number of a device node (Linux encoding)
}

// DirEntry is one entry of a directory ("." and ".." are left out).
type DirEntry struct {
	Name string
	Ino  uint64
}

// Extent is a run of a file's bytes stored contiguously in the volume:
// file bytes [Logical, Logical+Length) are volume bytes [Physical,
// Physical+Length). The last extent may reach past the file's size (a
// block is whole); readers stop at the size.
type Extent struct {
	Logical  int64 `json:"logical"`
	Physical int64 `json:"physical"`
	Length   int64 `json:"length"`
}

// node is an inode as a driver decoded it: its metadata and where its
// bytes are (extents, or inline bytes).
type node struct {
	Stat
	extents []Extent
	inline  []byte // data kept in the inode (ext4 inline data, xfs local forks)
	isInl   bool
}

// driver is one filesystem format's reader.
type driver interface {
	root() uint64
	inode(ino uint64) (*node, error)
	readDir(n *node) ([]DirEntry, error)
	readlink(n *node) (string, error)
}

// FS is a read-only guest file tree. It is safe for concurrent use.
type FS struct {
	r       io.ReaderAt
	size    int64
	content string
	d       driver
}

// Open reads the filesystem of a volume of size bytes; content is what
// guestdisk probed ("ext4", "xfs"). Other contents give ErrUnsupported.
func Open(r io.ReaderAt, size int64, content string) (*FS, error) {
	var (
		d   driver
		err error
	)
	switch content {
	case "ext4":
		d, err = openExt4(r, size)
	case "xfs":
		d, err = openXFS(r, size)
	case "":
		return nil, fmt.Errorf("%w: no filesystem signature", ErrUnsupported)
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, content)
	}
	if err != nil {
		return nil, err
	}
	return &FS{r: r, size: size, content: content, d: d}, nil
}

// Size is the volume's size in bytes.
func (f *FS) Size() int64 { return f.size }

// Content is the filesystem type FS reads ("ext4", "xfs").
func (f *FS) Content() string { return f.content }

// Lstat returns the metadata of name, not following a final symlink.
func (f *FS) Lstat(name string) (Stat, error) {
	n, err := f.resolve(name)
	if err != nil {
		return Stat{}, err
	}
	return n.Stat, nil
}

// Inode returns the metadata of inode ino.
func (f *FS) Inode(ino uint64) (Stat, error) {
	n, err := f.d.inode(ino)
	if err != nil {
		return Stat{}, err
	}
	return n.Stat, nil
}

// ReadDir lists directory name, sorted by name.
func (f *FS) ReadDir(name string) ([]DirEntry, error) {
	n, err := f.resolve(name)
	if err != nil {
		return nil, err
	}
	es, err := f.readDirNode(n)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	return es, nil
}

// ReadDirInode lists directory inode ino, sorted by name.
func (f *FS) ReadDirInode(ino uint64) ([]DirEntry, error) {
	n, err := f.d.inode(ino)
	if err != nil {
		return nil, err
	}
	return f.readDirNode(n)
}

func (f *FS) readDirNode(n *node) ([]DirEntry, error) {
	if !n.Mode.IsDir() {
		return nil, ErrNotDir
	}
	es, err := f.d.readDir(n)
	if err != nil {
		return nil, err
	}
	sortEntries(es)
	return es, nil
}

// Readlink returns the target of symlink name.
func (f *FS) Readlink(name string) (string, error) {
	n, err := f.resolve(name)
	if err != nil {
		return "", err
	}
	s, err := f.readlinkNode(n)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	return s, nil
}

// ReadlinkInode returns the target of symlink inode ino.
func (f *FS) ReadlinkInode(ino uint64) (string, error) {
	n, err := f.d.inode(ino)
	if err != nil {
		return "", err
	}
	return f.readlinkNode(n)
}

func (f *FS) readlinkNode(n *node) (string, error) {
	if n.Mode&fs.ModeSymlink == 0 {
		return "", fmt.Errorf("inode %d is not a symlink", n.Ino)
	}
	return f.d.readlink(n)
}

// Extents returns the data extents of regular file name, in file order.
func (f *FS) Extents(name string) ([]Extent, error) {
	n, err := f.resolve(name)
	if err != nil {
		return nil, err
	}
	if !n.Mode.IsRegular() {
		return nil, pathErr("extents", name, errors.New("not a regular file"))
	}
	return append([]Extent(nil), n.extents...), nil
}

// ExtentsInode returns the data extents of inode ino, in file order.
func (f *FS) ExtentsInode(ino uint64) ([]Extent, error) {
	n, err := f.d.inode(ino)
	if err != nil {
		return nil, err
	}
	return append([]Extent(nil), n.extents...), nil
}

// Open opens regular file name for reading.
func (f *FS) Open(name string) (*File, error) {
	n, err := f.resolve(name)
	if err != nil {
		return nil, err
	}
	if !n.Mode.IsRegular() {
		return nil, pathErr("open", name, errors.New("not a regular file"))
	}
	return &File{r: f.r, n: n}, nil
}

// OpenInode opens regular file inode ino for reading.
func (f *FS) OpenInode(ino uint64) (*File, error) {
	n, err := f.d.inode(ino)
	if err != nil {
		return nil, err
	}
	if !n.Mode.IsRegular() {
		return nil, fmt.Errorf("inode %d is not a regular file", ino)
	}
	return &File{r: f.r, n: n}, nil
}

// resolve walks name from the root, following symlinks in the middle of
// the path within the guest's tree.
func (f *FS) resolve(name string) (*node, error) {
	n, err := f.resolveNode(name)
	if err != nil {
		return nil, pathErr("lstat", name, err)
	}
	return n, nil
}

func (f *FS) resolveNode(name string) (*node, error) {
	rest := splitPath(name)
	if len(rest) > maxPathElems {
		return nil, errors.New("path too long")
	}
	root, err := f.d.inode(f.d.root())
	if err != nil {
		return nil, err
	}
	stack := []*node{root} // the directories from the root to the current one
	hops := 0
	for len(rest) > 0 {
		elem := rest[0]
		rest = rest[1:]
		cur := stack[len(stack)-1]
		switch elem {
		case ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		child, err := f.lookup(cur, elem)
		if err != nil {
			return nil, err
		}
		if child.Mode&fs.ModeSymlink != 0 && len(rest) > 0 {
			if hops++; hops > maxLinkHops {
				return nil, errors.New("too many levels of symbolic links")
			}
			target, err := f.d.readlink(child)
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
			}
			rest = append(splitPath(target), rest...)
			if len(rest) > maxPathElems {
				return nil, errors.New("path too long")
			}
			continue
		}
		if len(rest) > 0 && !child.Mode.IsDir() {
			return nil, ErrNotDir
		}
		stack = append(stack, child)
	}
	return stack[len(stack)-1], nil
}

func (f *FS) lookup(dir *node, name string) (*node, error) {
	if !dir.Mode.IsDir() {
		return nil, ErrNotDir
	}
	es, err := f.d.readDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		if e.Name == name {
			return f.d.inode(e.Ino)
		}
	}
	return nil, ErrNotExist
}

func splitPath(p string) []string {
	var out []string
	for _, e := range strings.Split(p, "/") {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

// WalkFunc is called by Walk for each file; p is slash-separated from the
// walk's start. Returning fs.SkipDir from a directory skips its contents.
type WalkFunc func(p string, st Stat, err error) error

// Walk visits the tree under start in lexical order, each directory inode
// once (a directory seen again — a cycle, or a damaged tree — is reported
// to fn as an error and not entered).
func (f *FS) Walk(start string, fn WalkFunc) error {
	n, err := f.resolve(start)
	if err != nil {
		return fn(cleanRel(start), Stat{}, err)
	}
	seen := map[uint64]bool{}
	return f.walk(cleanRel(start), n, fn, seen, 0)
}

func (f *FS) walk(p string, n *node, fn WalkFunc, seen map[uint64]bool, depth int) error {
	if err := fn(p, n.Stat, nil); err != nil {
		if errors.Is(err, fs.SkipDir) && n.Mode.IsDir() {
			return nil
		}
		return err
	}
	if !n.Mode.IsDir() {
		return nil
	}
	if seen[n.Ino] || depth > maxWalkDepth {
		return fn(p, n.Stat, fmt.Errorf("%w: directory inode %d is reached twice (a cycle)", ErrCorrupt, n.Ino))
	}
	seen[n.Ino] = true
	es, err := f.readDirNode(n)
	if err != nil {
		return fn(p, n.Stat, pathErr("readdir", p, err))
	}
	for _, e := range es {
		cp := path.Join(p, e.Name)
		c, err := f.d.inode(e.Ino)
		if err != nil {
			if err := fn(cp, Stat{}, pathErr("lstat", cp, err)); err != nil && !errors.Is(err, fs.SkipDir) {
				return err
			}
			continue
		}
		if err := f.walk(cp, c, fn, seen, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func cleanRel(p string) string {
	c := path.Clean("/" + p)
	if c == "/" {
		return "."
	}
	return c[1:]
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: "/" + strings.TrimPrefix(cleanRel(name), "."), Err: err}
}

func sortEntries(es []DirEntry) {
	slices.SortFunc(es, func(a, b DirEntry) int { return strings.Compare(a.Name, b.Name) })
}
