package publish

import (
	"context"
	"errors"
	"fmt"
	"github.com/holdfast-backup/holdfast/internal/clock"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"
)

// Step kinds, in the order Publish takes them.
const (
	stepHold       = "hold"       // Path: the point held (the session ID is the holder)
	stepDir        = "dir"        // Path: a directory Publish created
	stepFUSE       = "fuse"       // Path: the FUSE mount of the disk files
	stepLoop       = "loop"       // Path: the disk file; Device: its loop device
	stepPartitions = "partitions" // Path: the disk file; Device: its loop device
	stepVG         = "vg"         // VG activated read-only; Devices: LVM was restricted to
	stepMount      = "mount"      // Path: the mountpoint; Device: what is mounted
)

// Step is one thing Publish did (Done) or was doing when the record was
// written (not Done: it may or may not have happened).
type Step struct {
	Kind    string   `json:"kind"`
	Path    string   `json:"path,omitempty"`
	Device  string   `json:"device,omitempty"`
	VG      string   `json:"vg,omitempty"`
	Devices []string `json:"devices,omitempty"`
	Done    bool     `json:"done"`
}

func (st Step) String() string {
	switch st.Kind {
	case stepHold:
		return "hold on point " + st.Path
	case stepDir:
		return "directory " + st.Path
	case stepFUSE:
		return "FUSE mount " + st.Path
	case stepLoop:
		return "loop device of " + st.Path
	case stepPartitions:
		return "partition devices of " + st.Path
	case stepVG:
		return "volume group " + st.VG
	case stepMount:
		return "mount " + st.Path
	}
	return st.Kind + " " + st.Path
}

// save writes the record.
func (s *Session) save() error {
	if err := s.recs.Save(s); err != nil {
		return fatalError{fmt.Errorf("record publish session %s: %w", s.ID, err)}
	}
	return nil
}

// do records st as pending, runs f (which may fill in st, e.g. the loop
// device), and records it done. If f fails, whatever part of the step
// happened is undone and the step leaves the record.
func (s *Session) do(ctx context.Context, st Step, f func(st *Step) error) error {
	s.Steps = append(s.Steps, st)
	if err := s.save(); err != nil {
		s.Steps = s.Steps[:len(s.Steps)-1]
		return err
	}
	i := len(s.Steps) - 1
	if err := f(&s.Steps[i]); err != nil {
		if _, uerr := s.undoStep(ctx, s.Steps[i]); uerr != nil {
			s.Steps[i].Done = true // keep it recorded for cleanup
			_ = s.save()
			return errors.Join(err, uerr)
		}
		s.Steps = s.Steps[:i]
		return errors.Join(err, s.save())
	}
	s.Steps[i].Done = true
	return s.save()
}

// undoLast undoes the last recorded step.
func (s *Session) undoLast(ctx context.Context) error {
	i := len(s.Steps) - 1
	if _, err := s.undoStep(ctx, s.Steps[i]); err != nil {
		return err
	}
	s.Steps = s.Steps[:i]
	return s.save()
}

// undo undoes the recorded steps in reverse order, dropping each from the
// record once undone; it stops at the first step that cannot be undone.
// It returns what it removed.
func (s *Session) undo(ctx context.Context) ([]string, error) {
	var removed []string
	for len(s.Steps) > 0 {
		st := s.Steps[len(s.Steps)-1]
		did, err := s.undoStep(ctx, st)
		if err != nil {
			return removed, fmt.Errorf("unpublish %s: undo %s: %w", s.ID, st, err)
		}
		removed = append(removed, did...)
		s.Steps = s.Steps[:len(s.Steps)-1]
		if err := s.save(); err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// undoStep undoes one step if it happened, and says what it removed. It
// checks first: a mountpoint not mounted, a loop device no longer backed
// by the session's file, a directory gone, are left alone.
func (s *Session) undoStep(ctx context.Context, st Step) ([]string, error) {
	switch st.Kind {
	case stepMount:
		return s.unmount(ctx, st, "mount")
	case stepFUSE:
		if srv := s.fuse; srv != nil { // this process serves it
			// The loop device detached just before may still hold a disk
			// file for a moment (the kernel releases it asynchronously).
			did, err := s.unmountWith(st, "FUSE mount", func() error { return s.whileBusy(ctx, srv.Unmount) })
			if err == nil {
				s.fuse = nil // unmounted, by it or by someone else
			}
			return did, err
		}
		return s.unmount(ctx, st, "FUSE mount")
	case stepDir:
		err := os.Remove(st.Path)
		switch {
		case err == nil:
			return []string{"directory " + st.Path}, nil
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil
		case errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST):
			s.log.Warn("left a directory that is not empty", "dir", st.Path)
			return nil, nil
		case errors.Is(err, syscall.EBUSY): // something not ours is mounted there (unmount said so)
			s.log.Warn("left a directory something else is mounted on", "dir", st.Path)
			return nil, nil
		}
		return nil, err
	case stepLoop, stepPartitions:
		return s.undoLoop(ctx, st)
	case stepHold:
		return s.release(ctx, st.Path)
	case stepVG:
		if _, err := s.sys.Run(ctx, "vgchange", lvmArgs(st.Devices, "-an", st.VG)...); err != nil {
			return nil, err
		}
		return []string{"volume group " + st.VG + " (deactivated)"}, nil
	}
	return nil, fmt.Errorf("unknown step %q", st.Kind)
}

// ErrNotOurs is a mount at a recorded mountpoint of something other than
// what the session mounted there: cleanup leaves it alone.
var ErrNotOurs = errors.New("is not what this session mounted")

// unmount unmounts the step's mount if it is on top at its path: the
// recorded device (a mount step) or the session's FUSE server (a FUSE
// step). Anything else mounted there is left alone, with a warning; one
// mounted on top of the session's is an error (ErrNotOurs).
func (s *Session) unmount(ctx context.Context, st Step, what string) ([]string, error) {
	return s.unmountWith(st, what, func() error {
		_, err := s.sys.Run(ctx, "umount", st.Path)
		return err
	})
}

// unmountWith is unmount with umount the way to unmount.
func (s *Session) unmountWith(st Step, what string, umount func() error) ([]string, error) {
	ms, err := s.sys.MountsAt(st.Path)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	if ours, err := s.isOurs(st, ms[len(ms)-1]); err != nil || !ours {
		for _, m := range ms[:len(ms)-1] {
			if under, _ := s.isOurs(st, m); under {
				return nil, fmt.Errorf("%s %s: %s is mounted over it: %w", what, st.Path, ms[len(ms)-1], ErrNotOurs)
			}
		}
		s.log.Warn(fmt.Sprintf("publish %s: left %s mounted at %s: it %v (the session mounted %s there)",
			s.ID, ms[len(ms)-1], st.Path, ErrNotOurs, s.mountedWhat(st)))
		return nil, err
	}
	if err := umount(); err != nil {
		return nil, err
	}
	return []string{what + " " + st.Path}, nil
}

// mountedWhat names what the step mounted.
func (s *Session) mountedWhat(st Step) string {
	if st.Kind == stepFUSE {
		return "FUSE server " + s.fuseName()
	}
	return st.Device
}

// fuseName is the source the session's FUSE mount shows.
func (s *Session) fuseName() string { return "holdfast-" + s.ID }

// isOurs reports whether m is what step st mounted: the session's FUSE
// server, or the recorded device. Devices are compared by number (a
// device name may lead elsewhere by now): the number mountinfo lists, or,
// for a filesystem that lists an anonymous one (btrfs), that of the
// mount's source device.
func (s *Session) isOurs(st Step, m Mount) (bool, error) {
	if st.Kind == stepFUSE {
		return m.Source == s.fuseName() && strings.HasPrefix(m.FSType, "fuse"), nil
	}
	if st.Device == "" {
		return false, nil
	}
	num, err := s.sys.DevNumber(st.Device)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // the device is gone, so is its mount
	}
	if err != nil {
		return false, err
	}
	if num == m.Dev {
		return true, nil
	}
	if !strings.HasPrefix(m.Dev, "0:") || !strings.HasPrefix(m.Source, "/dev/") {
		return false, nil // a device's own number that is not the recorded device's
	}
	src, err := s.sys.DevNumber(m.Source)
	return err == nil && src == num, nil
}

// undoLoop removes the partition devices (stepPartitions) or detaches
// (stepLoop) the loop devices backed by the step's file.
func (s *Session) undoLoop(ctx context.Context, st Step) ([]string, error) {
	devs, err := s.sys.LoopsOf(st.Path)
	if err != nil {
		return nil, err
	}
	var did []string
	for _, dev := range devs {
		if st.Kind == stepPartitions {
			if _, err := s.runWhileBusy(ctx, "partx", "-d", dev); err != nil && !noPartitions(err) {
				return did, err
			}
			did = append(did, "partition devices of "+dev)
			continue
		}
		if _, err := s.runWhileBusy(ctx, "losetup", "-d", dev); err != nil {
			return did, err
		}
		did = append(did, "loop device "+dev)
	}
	return did, nil
}

// Devices are busy for a moment when something scans them: udev's blkid
// after partition devices come or go, LVM commands scanning every block
// device, multipath. Undoing a step on a busy device is retried
// busyTries times, busyWait apart (about 10 s in all).
const (
	busyTries = 100
	busyWait  = 100 * time.Millisecond
)

// runWhileBusy runs a command, again while it fails only because the
// device is busy.
func (s *Session) runWhileBusy(ctx context.Context, name string, args ...string) ([]byte, error) {
	var out []byte
	err := s.whileBusy(ctx, func() error {
		var err error
		out, err = s.sys.Run(ctx, name, args...)
		return err
	})
	return out, err
}

// whileBusy calls do until it succeeds, fails for another reason than a
// busy device, or has been tried busyTries times.
func (s *Session) whileBusy(ctx context.Context, do func() error) error {
	for try := 1; ; try++ {
		err := do()
		if err == nil || try == busyTries || !deviceBusy(err) {
			return err
		}
		if err := clock.Or(s.clk).Sleep(ctx, busyWait); err != nil {
			return err
		}
	}
}

// deviceBusy reports whether err is EBUSY: a tool that says so on
// stderr, or fusermount's error as go-fuse returns it.
func deviceBusy(err error) bool {
	var ee *ExitError
	if errors.As(err, &ee) {
		return strings.Contains(ee.Stderr, "busy")
	}
	return errors.Is(err, syscall.EBUSY) || strings.Contains(err.Error(), "Device or resource busy")
}

// noPartitions reports whether partx -d failed only because there was
// nothing to delete.
func noPartitions(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && (strings.Contains(ee.Stderr, "No such device or address") ||
		strings.Contains(ee.Stderr, "does not make sense") || strings.TrimSpace(ee.Stderr) == "")
}

// release ends the session's hold on point. Without a Holder (a clean-up
// by another process, which has no repository) the hold stays and a
// warning says how to release it.
func (s *Session) release(ctx context.Context, point string) ([]string, error) {
	if s.holder == nil {
		s.log.Warn(fmt.Sprintf("publish %s: the hold on point %s stays (no repository here): release it with "+
			"`holdfast holds release %s %s`", s.ID, point, point, s.ID))
		return nil, nil
	}
	if err := s.holder.ReleaseHold(ctx, point, s.ID); err != nil {
		return nil, err
	}
	return []string{"hold on point " + point}, nil
}
