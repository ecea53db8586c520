package guestfiles

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"unsafe"

	"github.com/holdfast-backup/holdfast/internal/beneath"
	"github.com/holdfast-backup/holdfast/internal/guestfs"
	"golang.org/x/sys/unix"
)

// Errors of Restore.
var (
	// ErrExists is a file in the destination that Restore would replace
	// without Force.
	ErrExists = errors.New("exists in the destination (--force replaces it)")
	// ErrEscape is a destination path that leads out of the destination
	// directory (a symbolic link or ".." on the way).
	ErrEscape = beneath.ErrEscape
	// ErrSharedData is files left out because the data of the files
	// restored from one volume would reach more than SharedFactor times
	// the volume (RestoreOptions.AllowShared restores them).
	ErrSharedData = errors.New("files share data blocks beyond the limit (--allow-shared-extents restores them)")
)

// maxName is the longest file name Linux creates.
const maxName = 255

// SharedFactor bounds the data one Restore writes: at most this many times
// the volume's size, unless RestoreOptions.AllowShared. Files may share
// blocks (reflinks), but a hostile image can point every file at the same
// blocks and make a small image write terabytes.
const SharedFactor = 4

// RestoreOptions tune Restore.
type RestoreOptions struct {
	Force  bool // replace existing files (never directories)
	Owners bool // set owners (needs root)
	// SetID keeps setuid/setgid bits and makes device nodes (with Owners).
	// Without it they are dropped: a guest's setuid-root program, or a
	// device node of a host disk made writable by a guest user's UID,
	// would give whoever reaches the destination root on this host.
	SetID bool
	// AllowShared lifts the SharedFactor bound on the data written.
	AllowShared bool
	Warn        func(string) // skipped names and entries; nil: dropped
	Volume      string       // names the volume in messages ("disk0-p1")
	Prefix      string       // destination directory under dest for the guest's root ("disk0-p1")
}

// restorer is one Restore run.
type restorer struct {
	RestoreOptions
	ctx   context.Context
	fsys  *guestfs.FS
	links map[uint64]string   // guest inode → destination path of its first name
	dirs  []dirMeta           // directories whose metadata is set last
	res   *RestoreResult      // counts
	cache map[string]*os.File // open destination directories
	dest  *os.File
	data  int64 // bytes of data extents restored (or refused) so far
}

// RestoreResult counts what Restore wrote.
type RestoreResult struct {
	Files     int   `json:"files"`
	Dirs      int   `json:"directories"`
	Symlinks  int   `json:"symlinks"`
	HardLinks int   `json:"hard_links"`
	Other     int   `json:"other"`
	Bytes     int64 `json:"bytes"` // data bytes written (holes not counted)
	Skipped   int   `json:"skipped"`
	// Damaged counts guest entries skipped because their inode or
	// directory is damaged (Restore then ends with ErrCorrupt).
	Damaged int `json:"damaged"`
	// SetIDDropped counts files whose setuid/setgid bits were dropped
	// (RestoreOptions.SetID keeps them).
	SetIDDropped int `json:"setid_dropped"`
	// SharedRefused counts files not restored because the data restored
	// would reach more than SharedFactor times the volume (Restore then
	// ends with ErrSharedData).
	SharedRefused int `json:"shared_refused"`
}

type dirMeta struct {
	rel string
	st  guestfs.Stat
}

// Restore writes the guest paths of fsys, and everything beneath them, to
// the directory dest, each at its path from the guest's root (under
// o.Prefix). See the package documentation for what it keeps and refuses.
func Restore(ctx context.Context, fsys *guestfs.FS, paths []string, dest string, opts RestoreOptions) (RestoreResult, error) {
	var res RestoreResult
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return res, err
	}
	d, err := os.OpenFile(dest, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return res, err
	}
	defer d.Close()
	o := &restorer{RestoreOptions: opts, ctx: ctx, fsys: fsys, links: map[uint64]string{}, res: &res, dest: d,
		cache: map[string]*os.File{}}
	defer o.closeDirs()
	for _, p := range paths {
		if err := o.restoreTree(p); err != nil {
			return res, err
		}
	}
	// directories last, deepest first, so writing into them does not
	// change their times and a read-only mode does not stop the restore
	for i := len(o.dirs) - 1; i >= 0; i-- {
		if err := o.setDirMeta(o.dirs[i]); err != nil {
			return res, err
		}
	}
	if res.SetIDDropped > 0 && o.Warn != nil {
		o.Warn(fmt.Sprintf("%d file(s) restored without their setuid/setgid bits (--keep-setid keeps them)", res.SetIDDropped))
	}
	var errs []error
	if res.Damaged > 0 {
		errs = append(errs, fmt.Errorf("%s%w: %d damaged entries skipped (see the warnings), the rest restored", o.where(""), guestfs.ErrCorrupt, res.Damaged))
	}
	if res.SharedRefused > 0 {
		errs = append(errs, fmt.Errorf("%s%w: %d file(s) not restored (see the warnings)", o.where(""), ErrSharedData, res.SharedRefused))
	}
	return res, errors.Join(errs...)
}

func (o *restorer) warn(format string, args ...any) {
	o.res.Skipped++
	if o.Warn != nil {
		o.Warn(fmt.Sprintf(format, args...))
	}
}

func (o *restorer) restoreTree(start string) error {
	clean := strings.TrimPrefix(path.Clean("/"+start), "/")
	if _, err := o.fsys.Lstat(clean); err != nil {
		return fmt.Errorf("%s%w", o.where(""), err)
	}
	// the directories above the start are made plain (0755)
	if parent := path.Dir(clean); parent != "." && parent != "" {
		if err := o.mkdirs(o.destRel(parent)); err != nil {
			return err
		}
	} else if o.Prefix != "" {
		if err := o.mkdirs(o.Prefix); err != nil {
			return err
		}
	}
	return o.fsys.Walk(clean, func(p string, st guestfs.Stat, err error) error {
		if cerr := o.ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if errors.Is(err, guestfs.ErrCorrupt) && p != cleanStart(clean) {
				// one damaged inode or directory: the rest is restored
				o.warn("%s: skipped: %v", o.where(p), err)
				o.res.Damaged++
				return nil
			}
			return fmt.Errorf("%s%w", o.where(""), err)
		}
		if bad := badName(path.Base(p)); bad != "" && p != "." {
			o.warn("%s: skipped: the name %s", o.where(p), bad)
			if st.Mode.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		return o.restoreEntry(p, st)
	})
}

// cleanStart is the path Walk reports for a start path clean.
func cleanStart(clean string) string {
	if clean == "" {
		return "."
	}
	return clean
}

// where names a guest path in messages.
func (o *restorer) where(p string) string {
	if o.Volume == "" {
		return "/" + p + ": "
	}
	if p == "" {
		return o.Volume + ": "
	}
	return o.Volume + ":/" + p
}

func (o *restorer) destRel(p string) string {
	if p == "." {
		p = ""
	}
	return strings.TrimPrefix(path.Join(o.Prefix, p), "/")
}

// badName says what is wrong with a guest name, or "".
func badName(name string) string {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Sprintf("%q is not a file name", name)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Sprintf("%q holds a slash or NUL", name)
	case len(name) > maxName:
		return fmt.Sprintf("of %d bytes is longer than %d", len(name), maxName)
	}
	return ""
}

func (o *restorer) closeDirs() {
	for k, f := range o.cache {
		_ = f.Close()
		delete(o.cache, k)
	}
}

func (o *restorer) restoreEntry(p string, st guestfs.Stat) error {
	if len(o.cache) > 64 { // no handle from the cache is held between entries
		o.closeDirs()
	}
	rel := o.destRel(p)
	if rel == "" { // the guest's root is dest itself, whose owner and mode stay the user's
		o.res.Dirs++
		return nil
	}
	dirRel, name := path.Split(rel)
	dir, err := o.openDir(strings.TrimSuffix(dirRel, "/"))
	if err != nil {
		return err
	}
	fd := int(dir.Fd())
	switch {
	case st.Mode.IsDir():
		return o.makeDir(fd, rel, name, st)
	case st.Mode.IsRegular():
		return o.restoreFile(fd, p, rel, name, st)
	case st.Mode&fs.ModeSymlink != 0:
		return o.restoreSymlink(fd, p, rel, name, st)
	default:
		return o.restoreSpecial(fd, p, rel, name, st)
	}
}

// openDir opens destination directory rel (relative to dest) without
// following any symlink or leaving dest.
func (o *restorer) openDir(rel string) (*os.File, error) {
	if rel == "" || rel == "." {
		return o.dest, nil
	}
	if f, ok := o.cache[rel]; ok {
		return f, nil
	}
	fd, err := beneath.Open(int(o.dest.Fd()), rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	f := os.NewFile(uintptr(fd), rel)
	o.cache[rel] = f
	return f, nil
}

// mkdirs makes the plain directories of rel (relative to dest).
func (o *restorer) mkdirs(rel string) error {
	cur := ""
	for _, elem := range strings.Split(rel, "/") {
		if elem == "" {
			continue
		}
		dir, err := o.openDir(cur)
		if err != nil {
			return err
		}
		if err := unix.Mkdirat(int(dir.Fd()), elem, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("make %s in the destination: %w", path.Join(cur, elem), err)
		}
		cur = path.Join(cur, elem)
	}
	_, err := o.openDir(cur) // an existing symlink is refused here
	return err
}

func (o *restorer) makeDir(fd int, rel, name string, st guestfs.Stat) error {
	err := unix.Mkdirat(fd, name, 0o700)
	if errors.Is(err, unix.EEXIST) {
		var cur unix.Stat_t
		if serr := unix.Fstatat(fd, name, &cur, unix.AT_SYMLINK_NOFOLLOW); serr == nil && cur.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = nil // merge into an existing directory
		} else if o.Force {
			if err = unix.Unlinkat(fd, name, 0); err == nil {
				err = unix.Mkdirat(fd, name, 0o700)
			}
		} else {
			return fmt.Errorf("%s: %w", rel, ErrExists)
		}
	}
	if err != nil {
		return fmt.Errorf("make directory %s: %w", rel, err)
	}
	o.dirs = append(o.dirs, dirMeta{rel: rel, st: st})
	o.res.Dirs++
	return nil
}

// clear makes room for name: nothing there, or (with Force) a file or
// symlink removed; a directory is never removed.
func (o *restorer) clear(fd int, rel, name string) error {
	var cur unix.Stat_t
	err := unix.Fstatat(fd, name, &cur, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if !o.Force {
		return fmt.Errorf("%s: %w", rel, ErrExists)
	}
	if cur.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("%s: a directory is in the way (not replaced, even with --force)", rel)
	}
	if err := unix.Unlinkat(fd, name, 0); err != nil {
		return fmt.Errorf("replace %s: %w", rel, err)
	}
	return nil
}

func (o *restorer) restoreFile(fd int, p, rel, name string, st guestfs.Stat) error {
	if first, ok := o.links[st.Ino]; ok && st.Nlink > 1 {
		if err := o.clear(fd, rel, name); err != nil {
			return err
		}
		return o.link(fd, first, rel, name)
	}
	f, err := o.fsys.OpenInode(st.Ino)
	if err != nil {
		return fmt.Errorf("%s%w", o.where(p)+": ", err)
	}
	exts := dataExtents(f)
	if !o.admit(p, exts) {
		return nil
	}
	if err := o.clear(fd, rel, name); err != nil {
		return err
	}
	if st.Nlink > 1 {
		o.links[st.Ino] = rel
	}
	ffd, err := unix.Openat(fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", rel, err)
	}
	out := os.NewFile(uintptr(ffd), rel)
	defer out.Close()
	n, err := o.copyData(out, f, exts)
	if err != nil {
		return fmt.Errorf("%s%w", o.where(p)+": ", err)
	}
	if err := out.Truncate(st.Size); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if err := o.setMeta(ffd, "", st); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	o.res.Files++
	o.res.Bytes += n
	return out.Close()
}

// dataExtents is what of a file is written: its data extents, or the
// bytes an inline file's inode holds (past them a hole: a hostile size
// writes no zeros).
func dataExtents(f *guestfs.File) []guestfs.Extent {
	if !f.Inline() {
		return f.Extents()
	}
	if n := f.InlineSize(); n > 0 {
		return []guestfs.Extent{{Logical: 0, Length: n}}
	}
	return nil
}

// admit counts a file's data against the SharedFactor bound: false (with a
// warning naming the file) when it would pass it.
func (o *restorer) admit(p string, exts []guestfs.Extent) bool {
	var n int64
	for _, e := range exts {
		n += e.Length // each at most the volume (guestfs checks), so no overflow
	}
	limit := SharedFactor * o.fsys.Size()
	if !o.AllowShared && n > limit-o.data {
		o.warn("%s: not restored: its %d bytes of data would bring what this restore writes from the volume to more than %d times the volume's %d bytes (files sharing blocks: reflinks, or a hostile image); --allow-shared-extents restores it",
			o.where(p), n, SharedFactor, o.fsys.Size())
		o.res.SharedRefused++
		return false
	}
	o.data += n
	return true
}

// copyData writes the extents of f at their offsets; holes are not written.
func (o *restorer) copyData(out *os.File, f *guestfs.File, exts []guestfs.Extent) (int64, error) {
	buf := make([]byte, min(int64(1<<20), max(f.Size(), 1)))
	var written int64
	for _, e := range exts {
		for off := e.Logical; off < e.Logical+e.Length; {
			if err := o.ctx.Err(); err != nil {
				return written, err
			}
			n := min(int64(len(buf)), e.Logical+e.Length-off)
			if _, err := f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
				return written, err
			}
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				return written, err
			}
			off += n
			written += n
		}
	}
	return written, nil
}

func (o *restorer) link(fd int, first, rel, name string) error {
	dirRel, oldName := path.Split(first)
	od, err := o.openDir(strings.TrimSuffix(dirRel, "/"))
	if err != nil {
		return err
	}
	if err := unix.Linkat(int(od.Fd()), oldName, fd, name, 0); err != nil {
		return fmt.Errorf("link %s to %s: %w", rel, first, err)
	}
	o.res.HardLinks++
	return nil
}

func (o *restorer) restoreSymlink(fd int, p, rel, name string, st guestfs.Stat) error {
	target, err := o.fsys.ReadlinkInode(st.Ino)
	if err != nil {
		return fmt.Errorf("%s%w", o.where(p)+": ", err)
	}
	if strings.ContainsRune(target, 0) || target == "" {
		o.warn("%s: skipped: symlink target %q", o.where(p), target)
		return nil
	}
	if err := o.clear(fd, rel, name); err != nil {
		return err
	}
	if err := unix.Symlinkat(target, fd, name); err != nil {
		return fmt.Errorf("symlink %s: %w", rel, err)
	}
	if err := o.setMeta(fd, name, st); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	o.res.Symlinks++
	return nil
}

func (o *restorer) restoreSpecial(fd int, p, rel, name string, st guestfs.Stat) error {
	kind := st.Perm & unix.S_IFMT
	if kind == unix.S_IFSOCK || ((kind == unix.S_IFCHR || kind == unix.S_IFBLK) && (!o.Owners || !o.SetID)) || st.Mode&fs.ModeIrregular != 0 {
		o.warn("%s: skipped: a %s (device nodes need root and --keep-setid; sockets are not restored)", o.where(p), st.Mode.Type())
		return nil
	}
	if err := o.clear(fd, rel, name); err != nil {
		return err
	}
	if err := unix.Mknodat(fd, name, kind|0o600, int(st.Rdev)); err != nil {
		return fmt.Errorf("make %s: %w", rel, err)
	}
	if err := o.setMeta(fd, name, st); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	o.res.Other++
	return nil
}

// setMeta sets owner, permissions and times: of the open file fd when
// name is "", else of name in directory fd (a symlink itself).
func (o *restorer) setMeta(fd int, name string, st guestfs.Stat) error {
	ts := []unix.Timespec{unix.NsecToTimespec(st.Atime.UnixNano()), unix.NsecToTimespec(st.Mtime.UnixNano())}
	symlink := st.Mode&fs.ModeSymlink != 0
	if st.Perm&0o6000 != 0 && !o.SetID && !symlink && !st.Mode.IsDir() {
		st.Perm &^= 0o6000
		o.res.SetIDDropped++
	}
	if name == "" {
		if o.Owners {
			if err := unix.Fchown(fd, int(st.UID), int(st.GID)); err != nil {
				return err
			}
		}
		if err := unix.Fchmod(fd, st.Perm&0o7777); err != nil { // after chown, which clears setuid
			return err
		}
		return futimens(fd, ts)
	}
	if o.Owners {
		if err := unix.Fchownat(fd, name, int(st.UID), int(st.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if !symlink {
		if err := unix.Fchmodat(fd, name, st.Perm&0o7777, 0); err != nil {
			return err
		}
	}
	return unix.UtimesNanoAt(fd, name, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func (o *restorer) setDirMeta(d dirMeta) error {
	f, err := o.openDir(d.rel)
	if err != nil {
		return err
	}
	if err := o.setMeta(int(f.Fd()), "", d.st); err != nil {
		return fmt.Errorf("%s: %w", d.rel, err)
	}
	return nil
}

// futimens sets the times of an open file (utimensat with a NULL path).
func futimens(fd int, ts []unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
