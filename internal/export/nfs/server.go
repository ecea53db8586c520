package nfs

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// File is one file in an export's directory.
type File struct {
	Name     string // e.g. "disk-0.img", "vm1.vmdk", "vm.json"
	Size     int64
	ReaderAt io.ReaderAt
	WriterAt io.WriterAt  // nil: read-only file (WRITE → NFS3ERR_ROFS)
	Flush    func() error // COMMIT (and stable writes) call it; may be nil
}

// Export is a directory of files published under Path.
type Export struct {
	Path  string // the export path clients mount, e.g. "/holdfast/ir-1a2b"
	Files []File
	// ModTime is reported as atime, mtime and ctime of the directory and
	// its files; zero: when the Server was created.
	ModTime time.Time
	// Scratch, if set, is a local directory shown in the export's
	// directory next to Files, where clients may create, write, resize,
	// rename and remove files and directories (scratch.go). Files keep
	// their names: a client cannot create, remove or rename over them.
	Scratch string
}

// Options configure a Server.
type Options struct {
	// Allow lists the clients allowed to mount and use the exports; empty:
	// loopback only.
	Allow []netip.Prefix
	// Logger receives connection errors (default: discarded).
	Logger *slog.Logger
	// Clock stamps the server's start and when clients were seen (Clients;
	// nil: the real clock).
	Clock clock.Clock
}

// Sentinel errors.
var (
	ErrInvalidExport = errors.New("nfs: invalid export")
	ErrNoListeners   = errors.New("nfs: no listeners")
)

// Server publishes exports over NFSv3 with its own portmapper and MOUNT
// service. It is safe for concurrent use.
type Server struct {
	opts  Options
	log   *slog.Logger
	start time.Time
	verf  [8]byte // write verifier: changes with every Server

	mu      sync.RWMutex
	exports map[[exportHashLen]byte]*export
	byPath  map[string]*export
	mounts  map[mountEntry]struct{}
	pmap    map[mapping]uint32 // (prog, vers, prot) → port

	cmu     sync.Mutex // guards clients and conns (clients.go)
	clients map[clientKey]*clientState
	conns   map[netip.Addr]connState
}

// export is an added Export with its handles.
type export struct {
	Export
	id     [exportHashLen]byte
	root   []byte // root directory handle
	fsid   uint64
	files  []*file
	byName map[string]*file
	byID   map[[nameHashLen]byte]*file
	dirs   map[string]bool              // directories the files' names imply ("vm" of "vm/vm.vmx")
	dirIDs map[[nameHashLen]byte]string // their handles' name hashes
	time   time.Time
	idx    *scratchIndex // inode → path of the scratch area's objects
}

type file struct {
	File
	handle []byte
	fileid uint64
}

// NewServer returns a server without exports.
func NewServer(o Options) *Server {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts: o, log: log, start: clock.Or(o.Clock).Now(),
		exports: map[[exportHashLen]byte]*export{}, byPath: map[string]*export{},
		mounts: map[mountEntry]struct{}{}, pmap: map[mapping]uint32{},
		clients: map[clientKey]*clientState{}, conns: map[netip.Addr]connState{},
	}
	ns := s.start.UnixNano()
	for i := range s.verf {
		s.verf[i] = byte(ns >> (8 * (7 - i)))
	}
	return s
}

// AddExport publishes e, replacing an export with the same path. Handles
// depend only on the path and the file names, so they stay valid across
// replacements and restarts.
func (s *Server) AddExport(e Export) error {
	x, err := s.newExport(e)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.exports[x.id]; ok && old.Path != x.Path {
		return fmt.Errorf("%w: %q: handle collision with %q", ErrInvalidExport, x.Path, old.Path)
	}
	s.exports[x.id] = x
	s.byPath[x.Path] = x
	return nil
}

// RemoveExport stops publishing the export at path; its handles become
// stale (NFS3ERR_STALE).
func (s *Server) RemoveExport(path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if x, ok := s.byPath[path]; ok {
		delete(s.byPath, path)
		delete(s.exports, x.id)
	}
	for m := range s.mounts {
		if m.dir == path {
			delete(s.mounts, m)
		}
	}
}

func (s *Server) newExport(e Export) (*export, error) {
	if !validExportPath(e.Path) {
		return nil, fmt.Errorf("%w: path %q must be absolute, clean and at most %d bytes", ErrInvalidExport, e.Path, maxPathLen)
	}
	x := &export{Export: e, byName: map[string]*file{}, byID: map[[nameHashLen]byte]*file{}, time: e.ModTime,
		idx: &scratchIndex{ino: map[uint64]string{}}, dirs: map[string]bool{}, dirIDs: map[[nameHashLen]byte]string{}}
	x.Files = append([]File(nil), e.Files...)
	if x.time.IsZero() {
		x.time = s.start
	}
	if e.Scratch != "" && !filepath.IsAbs(e.Scratch) {
		return nil, fmt.Errorf("%w: %q: scratch directory %q is not absolute", ErrInvalidExport, e.Path, e.Scratch)
	}
	x.id = exportHash(e.Path)
	x.root = rootHandle(x.id)
	x.fsid = fileid(x.id[:])
	for _, f := range x.Files {
		if err := validFile(f); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrInvalidExport, e.Path, err)
		}
		id := nameHash(f.Name)
		if _, dup := x.byID[id]; dup {
			return nil, fmt.Errorf("%w: %q: file %q repeated or colliding", ErrInvalidExport, e.Path, f.Name)
		}
		h := fileHandle(x.id, id)
		nf := &file{File: f, handle: h, fileid: fileid(h)}
		x.files = append(x.files, nf)
		x.byName[f.Name] = nf
		x.byID[id] = nf
		if dir, _, ok := strings.Cut(f.Name, "/"); ok {
			x.dirs[dir] = true
			x.dirIDs[nameHash(dir)] = dir
		}
	}
	for dir := range x.dirs {
		if _, clash := x.byName[dir]; clash {
			return nil, fmt.Errorf("%w: %q: %q is a file and a directory", ErrInvalidExport, e.Path, dir)
		}
		if x.byID[nameHash(dir)] != nil {
			return nil, fmt.Errorf("%w: %q: directory %q collides with a file", ErrInvalidExport, e.Path, dir)
		}
		if e.Scratch != "" { // where clients create files in it
			if err := os.MkdirAll(filepath.Join(e.Scratch, dir), 0o755); err != nil {
				return nil, fmt.Errorf("%w: %q: scratch directory: %w", ErrInvalidExport, e.Path, err)
			}
		}
	}
	return x, nil
}

const (
	maxPathLen = 1024 // MNTPATHLEN
	maxNameLen = 255  // NFS3 name_max reported by PATHCONF
)

func validExportPath(p string) bool {
	return len(p) > 1 && len(p) <= maxPathLen && p[0] == '/' && path.Clean(p) == p &&
		!strings.ContainsRune(p, 0)
}

// validFile checks a file: its name is a file name, or a directory's and
// a file name joined by a slash.
func validFile(f File) error {
	dir, name, sub := strings.Cut(f.Name, "/")
	if !sub {
		name = dir
	}
	switch {
	case !validName(name) || !validName(dir):
		return fmt.Errorf("file name %q invalid", f.Name)
	case f.ReaderAt == nil || f.Size < 0:
		return fmt.Errorf("file %q needs a ReaderAt and a size >= 0", f.Name)
	}
	return nil
}

func validName(n string) bool {
	return n != "" && n != "." && n != ".." && len(n) <= maxNameLen && !strings.ContainsAny(n, "/\x00")
}

// Handle layout (docs/nfs-protocol.md): version byte 1, then 16 bytes of
// SHA-256(export path); file handles append 8 bytes of SHA-256(name).
const (
	handleVersion  = 1
	exportHashLen  = 16
	nameHashLen    = 8
	rootHandleLen  = 1 + exportHashLen
	fileHandleLen  = rootHandleLen + nameHashLen
	maxHandleBytes = 64 // NFS3_FHSIZE
)

func exportHash(p string) (id [exportHashLen]byte) {
	sum := sha256.Sum256([]byte(p))
	copy(id[:], sum[:])
	return id
}

func nameHash(n string) (id [nameHashLen]byte) {
	sum := sha256.Sum256([]byte(n))
	copy(id[:], sum[:])
	return id
}

func rootHandle(id [exportHashLen]byte) []byte {
	return append([]byte{handleVersion}, id[:]...)
}

func fileHandle(id [exportHashLen]byte, name [nameHashLen]byte) []byte {
	return append(rootHandle(id), name[:]...)
}

// fileid derives a non-zero 64-bit id from a handle.
func fileid(h []byte) uint64 {
	sum := sha256.Sum256(h)
	var v uint64
	for _, b := range sum[:8] {
		v = v<<8 | uint64(b)
	}
	return v | 1<<63 // never 0, never colliding with small ids
}

// resolve maps a handle to its target: the root directory, a file or a
// scratch object. status is nfs3OK, NFS3ERR_BADHANDLE or NFS3ERR_STALE.
func (s *Server) resolve(h []byte) (target, uint32) {
	if len(h) == scratchHandleLen && h[0] == scratchVersion {
		var id [exportHashLen]byte
		copy(id[:], h[1:])
		s.mu.RLock()
		x := s.exports[id]
		s.mu.RUnlock()
		if x == nil {
			return target{}, nfs3ErrStale
		}
		var ino uint64
		for _, b := range h[rootHandleLen:] {
			ino = ino<<8 | uint64(b)
		}
		sc, st := x.resolveScratch(ino)
		return target{x: x, sc: sc}, st
	}
	return s.resolveFixed(h)
}

// resolveFixed maps a handle of version 1 to its export's root, one of
// its files or a directory the files imply.
func (s *Server) resolveFixed(h []byte) (target, uint32) {
	if (len(h) != rootHandleLen && len(h) != fileHandleLen) || h[0] != handleVersion {
		return target{}, nfs3ErrBadHandle
	}
	var id [exportHashLen]byte
	copy(id[:], h[1:])
	s.mu.RLock()
	x := s.exports[id]
	s.mu.RUnlock()
	if x == nil {
		return target{}, nfs3ErrStale
	}
	if len(h) == rootHandleLen {
		return target{x: x}, nfs3OK
	}
	var n [nameHashLen]byte
	copy(n[:], h[rootHandleLen:])
	if f := x.byID[n]; f != nil {
		return target{x: x, f: f}, nfs3OK
	}
	if d, ok := x.dirIDs[n]; ok {
		return target{x: x, dir: d}, nfs3OK
	}
	return target{}, nfs3ErrStale
}

func (s *Server) lookupPath(p string) *export {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byPath[p]
}

func (s *Server) exportList() []*export {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*export, 0, len(s.byPath))
	for _, x := range s.byPath {
		out = append(out, x)
	}
	slices.SortFunc(out, func(a, b *export) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// allowed reports whether a client address may mount and use exports.
func (s *Server) allowed(a netip.Addr) bool {
	a = a.Unmap()
	if len(s.opts.Allow) == 0 {
		return a.IsLoopback()
	}
	for _, p := range s.opts.Allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// allowGroups names the allowed clients for MOUNT EXPORT.
func (s *Server) allowGroups() []string {
	if len(s.opts.Allow) == 0 {
		return []string{"127.0.0.0/8", "::1/128"}
	}
	out := make([]string, len(s.opts.Allow))
	for i, p := range s.opts.Allow {
		out[i] = p.String()
	}
	return out
}
