package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Errors of opening a restore target.
var (
	// ErrTargetExists means the target holds data (a non-empty file, a
	// block device) and the restore was not told to replace it (Force).
	ErrTargetExists = errors.New("restore target exists")
	// ErrTargetRefused means the target lies outside the restore roots, is
	// reached through a symbolic link, or is of a kind restores may not
	// write.
	ErrTargetRefused = errors.New("restore target refused")
	// ErrTargetFormat means an unknown destination format was asked for.
	ErrTargetFormat = errors.New("unknown restore target format")
)

// TargetOptions say how a full restore may write its destination.
type TargetOptions struct {
	// Format is "raw", "qcow2", or "" to choose by name (TargetFormat).
	Format string
	// Force replaces an existing non-empty file and lets a block device be
	// written over in place. Without it such targets are refused
	// (ErrTargetExists); an empty file is replaced either way.
	Force bool
	// Confine, when set, limits where the target may be (restores on
	// behalf of someone else: a proxy's). Nil: any path the process can
	// write, symbolic links followed (the user's own command line).
	Confine *Confinement
}

// Confinement is where restores for others may write: files beneath one of
// Roots, reached without following any symbolic link, and the block
// devices listed in Devices (exact paths). No roots and no devices refuses
// every target.
type Confinement struct {
	Roots   []string
	Devices []string
}

// TargetFormat returns the destination format of a restore to path: format
// if given ("raw" or "qcow2"), else qcow2 for a name ending in .qcow2 (any
// case), else raw.
func TargetFormat(path, format string) (string, error) {
	switch format {
	case "raw", "qcow2":
		return format, nil
	case "":
		if strings.EqualFold(filepath.Ext(path), ".qcow2") {
			return "qcow2", nil
		}
		return "raw", nil
	}
	return "", fmt.Errorf("%w %q: use raw or qcow2", ErrTargetFormat, format)
}

// Target is an opened full-restore destination. A file (raw or qcow2) is
// written under a temporary name in the target's directory and renamed
// over the target by Close, so the target is either as it was or
// completely restored; Abort removes the temporary file. A block device is
// written in place.
type Target struct {
	RestoreTarget
	path    string   // as named
	dir     *os.File // the target's directory (files)
	name    string   // the target's name in dir
	tmp     string   // temporary name in dir; "" for a block device
	replace bool     // an existing file is replaced (rename may overwrite)
	file    *os.File // raw file or block device
	qcow    *Qcow2Target
	pipe    *pipelinedWriter // the writes to qcow
}

// OpenTarget prepares path to receive a disk of size bytes (see Target and
// TargetOptions). A new raw file is sized up front so zero chunks stay
// holes; a block device must hold at least size bytes and gets its zero
// chunks written; a qcow2 image is created with qemu-img and written
// through qemu-nbd. A file or device another process holds (a running VM's
// disk: QEMU's locks, a mounted device) is refused even with Force.
func OpenTarget(ctx context.Context, path string, size int64, o TargetOptions) (*Target, error) {
	format, err := TargetFormat(path, o.Format)
	if err != nil {
		return nil, err
	}
	pl, err := place(path, o.Confine)
	if err != nil {
		return nil, err
	}
	t := &Target{path: path, dir: pl.dir, name: pl.name}
	if err := t.open(ctx, pl, format, size, o); err != nil {
		pl.dir.Close()
		return nil, err
	}
	return t, nil
}

func (t *Target) open(ctx context.Context, pl placement, format string, size int64, o TargetOptions) error {
	var st unix.Stat_t
	err := unix.Fstatat(int(pl.dir.Fd()), pl.name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
	case err != nil:
		return fmt.Errorf("stat %s: %w", t.path, err)
	case st.Mode&unix.S_IFMT == unix.S_IFBLK:
		if format != "raw" {
			return fmt.Errorf("%w: %s is a block device; a %s image cannot be written to it", ErrTargetRefused, t.path, format)
		}
		if pl.confined && !pl.device {
			return fmt.Errorf("%w: %s is a block device the proxy does not allow restores to (--restore-device)", ErrTargetRefused, t.path)
		}
		if !o.Force {
			return fmt.Errorf("%w: %s is a block device; a restore overwrites it in place (use --force)", ErrTargetExists, t.path)
		}
		return t.openDevice(pl, size)
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("%w: %s is a symbolic link", ErrTargetRefused, t.path)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("%w: %s exists and is not a regular file or block device", ErrTargetRefused, t.path)
	case st.Size > 0 && !o.Force:
		return fmt.Errorf("%w: %s holds %d bytes (use --force to replace it)", ErrTargetExists, t.path, st.Size)
	default:
		t.replace = true
	}
	if pl.device {
		return fmt.Errorf("%w: %s is not a block device", ErrTargetRefused, t.path)
	}
	if t.replace {
		if err := t.checkUnlocked(); err != nil {
			return err
		}
	}
	f, err := t.createTemp()
	if err != nil {
		return err
	}
	if t.replace { // the restored file keeps the replaced one's owner and permissions
		_ = f.Chown(int(st.Uid), int(st.Gid))
		_ = f.Chmod(os.FileMode(st.Mode & 0o777)) // never setuid/setgid
	}
	if format == "qcow2" {
		f.Close()
		return t.openQcow2(ctx, pl, size)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		t.removeTemp()
		return fmt.Errorf("size %s: %w", t.path, err)
	}
	t.file, t.RestoreTarget = f, RestoreTarget{W: newWriteback(f)}
	return nil
}

// openDevice opens a block device for writing in place. O_EXCL makes the
// kernel refuse a device that is mounted or claimed (EBUSY).
func (t *Target) openDevice(pl placement, size int64) error {
	fd, err := unix.Openat(int(pl.dir.Fd()), pl.name, unix.O_WRONLY|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.EBUSY) {
		return fmt.Errorf("open %s: %w (mounted or in use)", t.path, ErrImageInUse)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", t.path, err)
	}
	f := os.NewFile(uintptr(fd), t.path)
	if err := lockedByOther(f); err != nil {
		f.Close()
		return fmt.Errorf("open %s: %w", t.path, err)
	}
	devSize, err := f.Seek(0, 2)
	if err != nil {
		f.Close()
		return fmt.Errorf("size of %s: %w", t.path, err)
	}
	if devSize < size {
		f.Close()
		return fmt.Errorf("%s holds %d bytes, the disk needs %d", t.path, devSize, size)
	}
	t.file, t.RestoreTarget = f, RestoreTarget{W: newWriteback(f), WriteZeros: true}
	return nil
}

// openQcow2 creates the temporary file as a qcow2 image and opens it
// through qemu-nbd. The tools reach it through the directory handle, so a
// directory swapped meanwhile cannot redirect them.
func (t *Target) openQcow2(ctx context.Context, pl placement, size int64) error {
	if size%512 != 0 {
		t.removeTemp()
		return fmt.Errorf("qcow2 cannot hold a disk of %d bytes (not a multiple of 512); restore to a raw file", size)
	}
	p := filepath.Join(pl.toolDir(), t.tmp)
	if err := qemuImgCreate(ctx, p, size); err != nil {
		t.removeTemp()
		return err
	}
	q, err := openQcow2(ctx, p)
	if err != nil {
		t.removeTemp()
		return err
	}
	t.qcow, t.pipe = q, newPipelinedWriter(q.client, qcow2Window)
	t.RestoreTarget = RestoreTarget{W: t.pipe}
	fd, err := unix.Openat(int(pl.dir.Fd()), t.tmp, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil { // else no write-back hints: the flush at the end writes it all
		t.file = os.NewFile(uintptr(fd), t.tmp)
		t.RestoreTarget.W = newImageWriteback(t.pipe, t.file)
	}
	return nil
}

// Close makes the restored disk durable and, for a file, renames it over
// the target. On failure the target is left as it was.
func (t *Target) Close() error {
	defer t.dir.Close()
	if t.tmp == "" { // block device
		if err := t.file.Sync(); err != nil {
			t.file.Close()
			return fmt.Errorf("sync %s: %w", t.path, err)
		}
		return t.file.Close()
	}
	if err := t.flush(); err != nil {
		t.removeTemp()
		return err
	}
	if err := t.rename(); err != nil {
		t.removeTemp()
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%w: %s appeared during the restore; it was left as it is", ErrTargetExists, t.path)
		}
		return fmt.Errorf("rename the restored disk to %s: %w", t.path, err)
	}
	if err := t.dir.Sync(); err != nil {
		return fmt.Errorf("sync the directory of %s: %w", t.path, err)
	}
	return nil
}

// rename moves the temporary file over the target: without replacing
// anything when no file was there (RENAME_NOREPLACE, or a check before a
// plain rename where the file system lacks it, as some network ones do).
func (t *Target) rename() error {
	dfd := int(t.dir.Fd())
	if t.replace {
		return unix.Renameat(dfd, t.tmp, dfd, t.name)
	}
	err := unix.Renameat2(dfd, t.tmp, dfd, t.name, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, t.name, &st, unix.AT_SYMLINK_NOFOLLOW); !errors.Is(err, unix.ENOENT) {
		return unix.EEXIST
	}
	return unix.Renameat(dfd, t.tmp, dfd, t.name)
}

// flush writes the temporary file's data to stable storage and closes it.
func (t *Target) flush() error {
	if t.qcow != nil {
		if err := t.pipe.Wait(); err != nil {
			t.qcow.Abort()
			t.closeFile()
			return fmt.Errorf("write %s: %w", t.path, err)
		}
		if err := t.qcow.Close(); err != nil {
			t.closeFile()
			return err
		}
		if t.file == nil {
			fd, err := unix.Openat(int(t.dir.Fd()), t.tmp, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("reopen the restored image: %w", err)
			}
			t.file = os.NewFile(uintptr(fd), t.tmp)
		}
	}
	if err := t.file.Sync(); err != nil {
		t.file.Close()
		return fmt.Errorf("sync %s: %w", t.path, err)
	}
	return t.file.Close()
}

// Abort stops after a failed restore: a file target is left as it was
// (the temporary file is removed), a block device holds a partial disk.
func (t *Target) Abort() {
	if t.qcow != nil {
		t.qcow.Abort() // fails the writes in flight
		_ = t.pipe.Wait()
	}
	t.closeFile()
	if t.tmp != "" {
		t.removeTemp()
	}
	t.dir.Close()
}

// closeFile closes the raw file, block device or (qcow2) the handle kept
// for write-back hints, if open.
func (t *Target) closeFile() {
	if t.file != nil {
		_ = t.file.Close()
	}
}

// Fail aborts after a failed restore and returns err saying what the
// restore left at the target.
func (t *Target) Fail(err error) error {
	t.Abort()
	if t.tmp == "" {
		return fmt.Errorf("restore to %s failed (the device holds a partial disk): %w", t.path, err)
	}
	return fmt.Errorf("restore to %s failed (the target was left as it was): %w", t.path, err)
}
