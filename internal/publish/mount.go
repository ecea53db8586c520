package publish

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// mountOptions are the options of each filesystem Publish mounts, after
// ro,nodev,nosuid,noexec: no journal replay (the device is read-only and
// the point's bytes must not change what is seen), and no UUID check for
// xfs (two points of one VM have the same UUID).
var mountOptions = map[string]string{
	"ext2":  "noload",
	"ext3":  "noload",
	"ext4":  "noload",
	"xfs":   "norecovery,nouuid",
	"btrfs": "rescue=nologreplay",
	// an EFI system partition: FAT keeps no owners, so every file is
	// root's alone (else a scan reports every UEFI guest not fully
	// scanned, and a bootkit there goes unseen)
	"vfat": "umask=077",
}

// MountOptions returns the mount options Publish uses for fstype, and
// whether it mounts that type at all.
func MountOptions(fstype string) (string, bool) {
	extra, ok := mountOptions[fstype]
	if !ok {
		return "", false
	}
	return "ro,nodev,nosuid,noexec," + extra, true
}

// mountAll mounts every recognised filesystem under MountDir/VM.
func (s *Session) mountAll(ctx context.Context) error {
	base := filepath.Join(s.MountDir, safeName(s.VM))
	for i := range s.Filesystems {
		f := &s.Filesystems[i]
		opts, ok := MountOptions(f.FSType)
		if !ok || f.Problem != "" {
			continue
		}
		// The mount directory Publish makes is root's alone (0700): guest
		// files keep the guest's owners and modes, and a host user whose
		// UID is a guest user's would read that user's files.
		if err := s.ensureDir(ctx, s.MountDir, 0o700); err != nil {
			return err
		}
		if err := s.ensureDir(ctx, base, 0o755); err != nil {
			return err
		}
		mp := filepath.Join(base, safeName(f.Name))
		if err := s.do(ctx, Step{Kind: stepDir, Path: mp}, func(*Step) error { return os.Mkdir(mp, 0o755) }); err != nil {
			if isFatal(err) {
				return err
			}
			f.Problem = err.Error()
			s.problem("%s: %v", f.Name, err)
			continue
		}
		err := s.do(ctx, Step{Kind: stepMount, Path: mp, Device: f.Device}, func(*Step) error {
			_, err := s.sys.Run(ctx, "mount", "-t", f.FSType, "-o", opts, f.Device, mp)
			return err
		})
		if err != nil {
			if isFatal(err) {
				return err
			}
			f.Problem = "not mounted: " + err.Error()
			s.problem("%s (%s on %s): %s", f.Name, f.FSType, f.Device, f.Problem)
			if err := s.undoLast(ctx); err != nil { // its mountpoint
				return err
			}
			continue
		}
		f.Mountpoint = mp
	}
	return s.save()
}

// ensureDir makes dir (recorded) unless it exists. An existing one must
// be private (checkPrivate): the default mount directory is in the
// world-writable temporary folder under a name the session ID (in the
// serving process's arguments) gives away, so another user could have
// made it, or a symbolic link there, to see the guest's files mounted
// where they can read them.
func (s *Session) ensureDir(ctx context.Context, dir string, mode os.FileMode) error {
	if _, err := os.Lstat(dir); err == nil {
		return checkPrivate(dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return s.do(ctx, Step{Kind: stepDir, Path: dir}, func(*Step) error { return os.Mkdir(dir, mode) })
}

// safeName makes a name from the guest (VM or LV name) one path element.
func safeName(name string) string {
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == 0 {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == "." || name == ".." {
		return "_" + name
	}
	return name
}
