package pipeline

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/beneath"
	"golang.org/x/sys/unix"
)

// placement is where a target goes: its directory, opened, and its name
// there. Everything after place works relative to the directory handle.
type placement struct {
	dir      *os.File
	dirPath  string // for messages and tools; a /proc handle path when confined
	name     string
	confined bool // a restore for someone else (TargetOptions.Confine)
	device   bool // one of the Confinement's Devices
}

// toolDir is the directory path handed to external tools (qemu-img,
// qemu-nbd).
func (pl placement) toolDir() string { return pl.dirPath }

// place opens the directory of path. Unconfined, the path is taken as the
// user wrote it, a symbolic link at the end resolved to what it names.
// Confined, path must be an absolute path beneath one of the roots, whose
// directories are opened with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS)
// from the root, or one of the listed devices.
func place(path string, c *Confinement) (placement, error) {
	if c == nil {
		return placeFree(path)
	}
	return placeConfined(path, c)
}

func placeFree(path string) (placement, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		resolved, err := filepath.EvalSymlinks(path)
		if err != nil {
			return placement{}, fmt.Errorf("resolve %s: %w", path, err)
		}
		path = resolved
	}
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if name == "" || name == "." || name == ".." {
		return placement{}, fmt.Errorf("%w: %s names a directory", ErrTargetRefused, path)
	}
	abs, err := filepath.Abs(dir) // tools must not take a name for a protocol prefix
	if err != nil {
		return placement{}, err
	}
	f, err := os.OpenFile(abs, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return placement{}, fmt.Errorf("open the directory of %s: %w", path, err)
	}
	return placement{dir: f, dirPath: abs, name: name}, nil
}

func placeConfined(path string, c *Confinement) (placement, error) {
	if !filepath.IsAbs(path) {
		return placement{}, fmt.Errorf("%w: %s is not an absolute path", ErrTargetRefused, path)
	}
	clean := filepath.Clean(path)
	for _, d := range c.Devices {
		if filepath.Clean(d) == clean {
			return placeDevice(clean)
		}
	}
	for _, root := range c.Roots {
		rel, err := filepath.Rel(filepath.Clean(root), clean)
		if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		return placeBeneath(root, rel, path)
	}
	if len(c.Roots) == 0 && len(c.Devices) == 0 {
		return placement{}, fmt.Errorf("%w: %s: this proxy takes no restores (start it with --restore-root DIR)", ErrTargetRefused, path)
	}
	return placement{}, fmt.Errorf("%w: %s is outside this proxy's restore roots %v", ErrTargetRefused, path, c.Roots)
}

// placeDevice opens the directory of an allowed device. The administrator
// named the path, so it may go through symbolic links (/dev/disk/by-id).
func placeDevice(path string) (placement, error) {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return placement{}, fmt.Errorf("resolve %s: %w", path, err)
	}
	pl, err := placeFree(resolved)
	pl.confined, pl.device = true, true
	return pl, err
}

// placeBeneath opens the directory of root/rel without leaving root and
// without following any symbolic link on the way.
func placeBeneath(root, rel, path string) (placement, error) {
	rfd, err := beneath.OpenRoot(root)
	if err != nil {
		return placement{}, fmt.Errorf("restore root: %w", err)
	}
	defer unix.Close(rfd)
	dir, name := filepath.Split(rel)
	if dir == "" {
		dir = "."
	}
	fd, err := beneath.Open(rfd, dir, unix.O_RDONLY|unix.O_DIRECTORY)
	switch {
	case errors.Is(err, beneath.ErrEscape):
		return placement{}, fmt.Errorf("%w: %s: the way to it from restore root %s goes through a symbolic link or leaves the root", ErrTargetRefused, path, root)
	case errors.Is(err, unix.ENOTDIR):
		return placement{}, fmt.Errorf("%w: %s: a part of its directory is not a directory", ErrTargetRefused, path)
	case errors.Is(err, beneath.ErrUnsupported):
		return placement{}, fmt.Errorf("%w: %s: %w", ErrTargetRefused, path, err)
	case err != nil:
		return placement{}, fmt.Errorf("open the directory of %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(root, dir))
	return placement{dir: f, dirPath: "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(fd),
		name: name, confined: true}, nil
}

// createTemp creates the temporary file next to the target.
func (t *Target) createTemp() (*os.File, error) {
	for range 10 {
		var b [6]byte
		_, _ = rand.Read(b[:])
		tmp := "." + t.name + ".holdfast-restore-" + hex.EncodeToString(b[:])
		fd, err := unix.Openat(int(t.dir.Fd()), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create a temporary file beside %s: %w", t.path, err)
		}
		t.tmp = tmp
		return os.NewFile(uintptr(fd), filepath.Join(t.dir.Name(), tmp)), nil
	}
	return nil, fmt.Errorf("create a temporary file beside %s: no free name", t.path)
}

func (t *Target) removeTemp() { _ = unix.Unlinkat(int(t.dir.Fd()), t.tmp, 0) }

// checkUnlocked refuses an existing file another process holds a lock on.
func (t *Target) checkUnlocked() error {
	fd, err := unix.Openat(int(t.dir.Fd()), t.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", t.path, err)
	}
	f := os.NewFile(uintptr(fd), t.path)
	defer f.Close()
	if err := lockedByOther(f); err != nil {
		return fmt.Errorf("%s: %w", t.path, err)
	}
	return nil
}

// lockedByOther reports (ErrImageInUse) whether another open file holds a
// POSIX or OFD lock on any byte of f, as QEMU does on the images and
// devices of a running VM.
func lockedByOther(f *os.File) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return fmt.Errorf("check locks: %w", err)
	}
	if lk.Type != unix.F_UNLCK {
		return ErrImageInUse
	}
	return nil
}
