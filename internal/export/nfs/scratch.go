package nfs

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// A scratch area is a local directory an export shows next to its fixed
// Files: clients create, write, resize, rename and remove files and
// directories there (ESXi's .lck-* directories, .vswp, vmware.log,
// .nvram, a rewritten .vmx). The fixed Files stay as they are: their names
// cannot be created, removed or renamed over.
//
// A scratch object's handle is version byte 2, the export's 16-byte hash
// and its 8-byte inode number, so it survives renames and restarts of the
// service; the inode → path index is rebuilt by walking the directory
// when a handle is not in it.

const (
	scratchVersion   = 2
	scratchHandleLen = rootHandleLen + 8
	maxScratchWalk   = 100_000 // entries an index rebuild visits at most
)

// scratchObj is a file or directory of an export's scratch area.
type scratchObj struct {
	rel string // slash-separated path below the scratch directory, never ""
	fi  fs.FileInfo
}

func (o *scratchObj) ino() uint64 { return fileIno(o.fi) }

func fileIno(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// scratchIndex maps inode numbers to paths below a scratch directory.
type scratchIndex struct {
	mu  sync.Mutex
	ino map[uint64]string
}

func (x *export) scratchPath(rel string) string {
	return filepath.Join(x.Scratch, filepath.FromSlash(rel))
}

func (x *export) remember(rel string, fi fs.FileInfo) {
	x.idx.mu.Lock()
	x.idx.ino[fileIno(fi)] = rel
	x.idx.mu.Unlock()
}

func (x *export) forget(ino uint64) {
	x.idx.mu.Lock()
	delete(x.idx.ino, ino)
	x.idx.mu.Unlock()
}

// rebuild walks the scratch directory into a fresh index.
func (x *export) rebuild() {
	m := map[uint64]string{}
	n := 0
	_ = filepath.WalkDir(x.Scratch, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == x.Scratch {
			return nil
		}
		if n++; n > maxScratchWalk {
			return filepath.SkipAll
		}
		if fi, err := d.Info(); err == nil {
			rel, _ := filepath.Rel(x.Scratch, p)
			m[fileIno(fi)] = filepath.ToSlash(rel)
		}
		return nil
	})
	x.idx.mu.Lock()
	x.idx.ino = m
	x.idx.mu.Unlock()
}

// resolveScratch maps an inode number of a scratch handle to its object.
func (x *export) resolveScratch(ino uint64) (*scratchObj, uint32) {
	if x.Scratch == "" {
		return nil, nfs3ErrStale
	}
	for try := range 2 {
		x.idx.mu.Lock()
		rel, ok := x.idx.ino[ino]
		x.idx.mu.Unlock()
		if ok {
			if fi, err := os.Lstat(x.scratchPath(rel)); err == nil && fileIno(fi) == ino && scratchType(fi) {
				return &scratchObj{rel: rel, fi: fi}, nfs3OK
			}
		}
		if try == 0 {
			x.rebuild()
		}
	}
	return nil, nfs3ErrStale
}

// scratchType reports whether fi is something a scratch area serves:
// regular files and directories (no symlinks, devices or sockets).
func scratchType(fi fs.FileInfo) bool { return fi.Mode().IsRegular() || fi.IsDir() }

func scratchHandle(id [exportHashLen]byte, ino uint64) []byte {
	h := append([]byte{scratchVersion}, id[:]...)
	for i := 7; i >= 0; i-- {
		h = append(h, byte(ino>>(8*i)))
	}
	return h
}

// scratchChild looks name up in scratch directory rel ("" : the scratch
// directory itself).
func (t target) scratchChild(rel, name string) (target, uint32) {
	if t.x.Scratch == "" {
		return t, nfs3ErrNoEnt
	}
	if !validScratchName(name) {
		return t, nfs3ErrNoEnt
	}
	crel := path.Join(rel, name)
	fi, err := os.Lstat(t.x.scratchPath(crel))
	if err != nil || !scratchType(fi) {
		return t, nfs3ErrNoEnt
	}
	t.x.remember(crel, fi)
	return target{x: t.x, sc: &scratchObj{rel: crel, fi: fi}}, nfs3OK
}

// validScratchName reports whether a client may name a scratch entry so.
func validScratchName(n string) bool {
	return n != "" && n != "." && n != ".." && len(n) <= maxNameLen && !strings.ContainsAny(n, "/\x00")
}

// dirRel is the scratch path of directory t: "" for the export's root.
func (t target) dirRel() string {
	if t.sc != nil {
		return t.sc.rel
	}
	return t.dir
}

// isDir reports whether t is a directory (the root or a scratch one).
func (t target) isDir() bool {
	if t.sc != nil {
		return t.sc.fi.IsDir()
	}
	return t.f == nil
}

// refresh re-reads a scratch object's attributes after a change.
func (t target) refresh() target {
	if t.sc == nil {
		return t
	}
	if fi, err := os.Lstat(t.x.scratchPath(t.sc.rel)); err == nil {
		t.sc = &scratchObj{rel: t.sc.rel, fi: fi}
	}
	return t
}

// scratchParent is the directory holding scratch object t.
func (t target) scratchParent() target {
	dir := path.Dir(t.sc.rel)
	if dir == "." {
		return target{x: t.x}
	}
	if t.x.dirs[dir] {
		return target{x: t.x, dir: dir}
	}
	fi, err := os.Lstat(t.x.scratchPath(dir))
	if err != nil {
		return target{x: t.x}
	}
	return target{x: t.x, sc: &scratchObj{rel: dir, fi: fi}}
}

// scratchNames lists scratch directory rel, without the names of the
// export's fixed files.
func (t target) scratchNames(rel string) []string {
	if t.x.Scratch == "" {
		return nil
	}
	f, err := os.Open(t.x.scratchPath(rel))
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	out := names[:0]
	for _, n := range names {
		if full := path.Join(rel, n); t.x.byName[full] != nil || t.x.dirs[full] {
			continue
		}
		out = append(out, n)
	}
	return out
}

// newName checks a name a client wants to create, remove or rename in
// directory t: it must be in a scratch area and not a fixed file.
func (t target) newName(name string) uint32 {
	switch {
	case !t.isDir():
		return nfs3ErrNotDir
	case t.x.Scratch == "":
		return nfs3ErrNotSupp
	case name == "." || name == "..":
		return nfs3ErrExist
	case !validScratchName(name):
		return nfs3ErrInval
	case t.sc == nil && (t.x.byName[path.Join(t.dir, name)] != nil || t.x.dirs[path.Join(t.dir, name)]):
		return nfs3ErrAcces // the point's files are not the client's
	}
	return nfs3OK
}

// errStatus maps a local file error to an NFS status.
func errStatus(err error) uint32 {
	if err == nil {
		return nfs3OK
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if st, ok := errnoStatus[errno]; ok {
			return st
		}
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nfs3ErrNoEnt
	case errors.Is(err, fs.ErrExist):
		return nfs3ErrExist
	}
	return nfs3ErrIO
}

var errnoStatus = map[syscall.Errno]uint32{
	syscall.ENOENT: nfs3ErrNoEnt, syscall.EEXIST: nfs3ErrExist, syscall.ENOTDIR: nfs3ErrNotDir,
	syscall.EISDIR: nfs3ErrIsDir, syscall.ENOTEMPTY: nfs3ErrNotEmpty, syscall.ENOSPC: nfs3ErrNoSpc,
	syscall.EFBIG: nfs3ErrFBig, syscall.EINVAL: nfs3ErrInval, syscall.ELOOP: nfs3ErrInval,
	syscall.EACCES: nfs3ErrAcces, syscall.EPERM: nfs3ErrAcces, syscall.EXDEV: nfs3ErrXDev,
}

// openScratch opens a scratch file without following symlinks.
func (t target) openScratch(flag int) (*os.File, error) {
	return os.OpenFile(t.x.scratchPath(t.sc.rel), flag|syscall.O_NOFOLLOW, 0)
}
