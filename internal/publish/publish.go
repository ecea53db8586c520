package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/export/fuse"
	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
)

// readAhead is the chunks restorefs fetches ahead of a sequential reader:
// the kernel reads the loop device in requests of at most 1 MiB, so
// restorefs' default (4) leaves its fetch workers idle; 16 read a 768 MiB
// file 10–15 % faster on 2 cores (docs/performance.md, "Publish").
const readAhead = 16

// ErrExists means a session with that ID is recorded already.
var ErrExists = errors.New("publish session exists")

// Publish publishes point o.Point: it serves the disks through FUSE from
// this process (until Close), attaches them to read-only loop devices,
// adds partitions, activates LVM read-only and mounts every filesystem
// it recognises read-only. It returns once everything is mounted; what
// could not be published is in Session.Problems. On an error it undoes
// what it did.
func Publish(ctx context.Context, o Options) (*Session, error) {
	if o.Store == nil || o.Point == nil {
		return nil, errors.New("publish: no point")
	}
	s, err := newSession(o)
	if err != nil {
		return nil, err
	}
	if err := s.publish(ctx, o); err != nil {
		if _, uerr := s.undo(context.WithoutCancel(ctx)); uerr != nil {
			s.closeDisks()
			return nil, fmt.Errorf("%w (and undoing it: %w; `holdfast publish cleanup` retries)", err, uerr)
		}
		s.closeDisks()
		_ = s.recs.Remove(s.ID)
		return nil, err
	}
	s.Ready = true
	if err := s.save(); err != nil {
		_ = s.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

// newSession fills in the defaults and makes sure the ID is free.
func newSession(o Options) (*Session, error) {
	s := &Session{ID: o.ID, VM: o.Point.VM, Point: o.Point.ID, MountDir: o.MountDir, PID: o.PID,
		sys: o.System, log: o.Logger, holder: o.Holder, clk: o.Clock, Disks: []Disk{}, Filesystems: []Filesystem{}, Steps: []Step{}}
	if s.ID == "" {
		s.ID = NewID()
	} else if !ValidID(s.ID) {
		return nil, fmt.Errorf("publish: %q is not a session ID (pub- and 8 hex digits)", s.ID)
	}
	if s.sys == nil {
		s.sys = Host{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.PID == 0 {
		s.PID = os.Getpid()
	}
	// Without its start time the process could not be told from a
	// later one with its PID: the session would count as gone.
	var err error
	if s.PIDStart, err = instant.ProcStart(s.PID); err != nil {
		return nil, fmt.Errorf("publish: the start time of pid %d: %w", s.PID, err)
	}
	s.Started = clock.Or(o.Clock).Now().UTC()
	dir := o.StateDir
	if dir == "" {
		dir = DefaultStateDir()
	}
	if dir, err = absDir(dir); err != nil {
		return nil, err
	}
	s.recs = Records{Dir: dir}
	if s.MountDir == "" {
		s.MountDir = filepath.Join(os.TempDir(), "holdfast.mount."+s.ID)
	}
	if s.MountDir, err = filepath.Abs(s.MountDir); err != nil {
		return nil, err
	}
	// Mount points are recorded as /proc/self/mountinfo shows them: with
	// symbolic links resolved (a /tmp that is a link).
	if parent, err := filepath.EvalSymlinks(filepath.Dir(s.MountDir)); err == nil {
		s.MountDir = filepath.Join(parent, filepath.Base(s.MountDir))
	}
	if _, err := os.Stat(s.recs.path(s.ID)); err == nil {
		return nil, fmt.Errorf("publish %s: %w", s.ID, ErrExists)
	}
	return s, nil
}

// absDir makes dir (0700) and returns its absolute path with symbolic
// links resolved: the loop devices' backing files are recorded by it.
func absDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", err
	}
	return abs, checkPrivate(abs)
}

func (s *Session) publish(ctx context.Context, o Options) error {
	if err := s.save(); err != nil {
		return err
	}
	if o.Holder != nil {
		err := s.do(ctx, Step{Kind: stepHold, Path: o.Point.ID}, func(*Step) error {
			host, _ := os.Hostname()
			return o.Holder.HoldPoint(ctx, repo.Hold{Point: o.Point.ID, Holder: s.ID, Who: fmt.Sprintf("%s pid %d", host, s.PID),
				Why: fmt.Sprintf("publish session %s of %s under %s", s.ID, s.VM, s.MountDir)})
		})
		if err != nil {
			return fmt.Errorf("hold point %s: %w", o.Point.ID, err)
		}
	}
	priv := s.recs.SessionDir(s.ID)
	disksDir := filepath.Join(priv, "disks")
	for _, d := range []string{priv, disksDir} {
		if err := s.do(ctx, Step{Kind: stepDir, Path: d}, func(*Step) error { return os.Mkdir(d, 0o700) }); err != nil {
			return err
		}
	}
	var files []fuse.Disk
	for i := range o.Point.Disks {
		d, err := restorefs.OpenDisk(ctx, o.Store, o.Point, i, restorefs.Options{CacheBytes: o.CacheBytes, ReadAhead: readAhead, Logger: s.log})
		if err != nil {
			return err
		}
		s.disks = append(s.disks, d)
		files = append(files, d)
		s.Disks = append(s.Disks, Disk{Index: i, Size: d.Size(), File: filepath.Join(disksDir, fuse.FileName(i))})
	}
	err := s.do(ctx, Step{Kind: stepFUSE, Path: disksDir}, func(*Step) error {
		srv, err := fuse.Mount(disksDir, files, fuse.Options{Name: s.fuseName(), Logger: s.log})
		s.fuse = srv
		return err
	})
	if err != nil {
		return err
	}
	return s.attach(ctx)
}

// attach attaches the disk files to loop devices, finds and mounts the
// filesystems.
func (s *Session) attach(ctx context.Context) error {
	for i := range s.Disks {
		d := &s.Disks[i]
		err := s.do(ctx, Step{Kind: stepLoop, Path: d.File}, func(st *Step) error {
			out, err := s.sys.Run(ctx, "losetup", "-r", "--find", "--show", d.File)
			if err != nil {
				return err
			}
			st.Device = strings.TrimSpace(string(out))
			if !strings.HasPrefix(st.Device, "/dev/loop") {
				return fmt.Errorf("losetup printed %q, not a loop device", st.Device)
			}
			d.Loop = st.Device
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, d := range s.Disks {
		if err := s.findFilesystems(ctx, d); err != nil {
			return err
		}
	}
	if err := s.activateLVM(ctx); err != nil {
		return err
	}
	return s.mountAll(ctx)
}

// Close unpublishes: it undoes every step in reverse order, stops serving
// the disks and removes the record. A step that cannot be undone stops it
// with an error; the record keeps the steps left.
func (s *Session) Close(ctx context.Context) error {
	_, err := s.undo(ctx)
	if err != nil {
		return err
	}
	s.closeDisks()
	return s.recs.Remove(s.ID)
}

func (s *Session) closeDisks() {
	for _, d := range s.disks {
		_ = d.Close()
	}
	s.disks = nil
}

// Wait returns when the session's FUSE mount has gone (Close, or an
// unmount by someone else).
func (s *Session) Wait() {
	if srv := s.fuse; srv != nil {
		srv.Wait()
	}
}
