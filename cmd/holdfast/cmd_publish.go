package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/background"
	"github.com/holdfast-backup/holdfast/internal/publish"
	"github.com/holdfast-backup/holdfast/internal/textsafe"
	"github.com/spf13/cobra"
)

// publishOptions are the flags of publish and publish serve.
type publishOptions struct {
	mountDir, id string
	asJSON       bool
	cacheMiB     int
}

// errNeedsRoot: publishing mounts filesystems and attaches loop devices.
var errNeedsRoot = errors.New("publish needs root: it serves FUSE, attaches loop devices and mounts filesystems")

func needRoot() error {
	if os.Geteuid() != 0 {
		return errNeedsRoot
	}
	return nil
}

func newPublishCommand(a *app) *cobra.Command {
	var stateDir string
	var o publishOptions
	co := &clientOptions{}
	c := &cobra.Command{Use: "publish POINT [--mount-dir DIR] [--json]",
		Short: "Publish a restore point on this host as mounted, read-only folders",
		Args:  exactArgs(1),
		Long: `Publish a restore point on this host as mounted, read-only folders.

POINT is a restore point of the repository: an ID, a unique prefix, "latest"
or "VM:latest". A background holdfast process serves the point's disks as
read-only files through FUSE; each is attached to a read-only loop device,
its partitions are added (partx), LVM volume groups are activated read-only
(LVM restricted to these devices; a volume group whose name is in use on
the host is skipped), and every ext2/3/4, xfs and btrfs filesystem is
mounted read-only (nodev,nosuid,noexec; ext* noload, xfs norecovery,nouuid)
under DIR/VM/diskN-pM, DIR/VM/diskN or DIR/VM/LV (default DIR:
holdfast.mount.ID in the system temporary folder). Swap, unknown
filesystems and LVM physical volumes are listed, not mounted. The command
returns once everything is mounted and prints the devices as lsblk does,
or JSON (--json). What could not be published is reported, and the rest is
published. Needs root.

Through the server (--server, or HOLDFAST_SERVER and no repository given),
a proxy — the mount server, running as root — publishes the point with
chunks from its repository agent; --mount-dir is a path there, and the ID
is pub- and the server's session number. list and cleanup are local.

The guest's filesystems are parsed by this host's kernel: publish only
points you would mount anyway, or scan them on a host set aside for it.
'holdfast unpublish ID' takes everything down again.`}
	c.PersistentFlags().StringVar(&stateDir, "state-dir", "", "where publish sessions are recorded (default /run/holdfast/publish as root)")
	f := c.Flags()
	f.StringVar(&o.mountDir, "mount-dir", "", "mount the filesystems under DIR/VM (default holdfast.mount.ID in the system temporary folder)")
	f.BoolVar(&o.asJSON, "json", false, "print the session as JSON")
	f.IntVar(&o.cacheMiB, "cache", 256, "chunk cache per disk, MiB")
	addClientFlags(c, co)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if server, err := a.viaServer(co); err != nil {
			return err
		} else if server {
			return runServerPublish(cmd.Context(), a, co, o, args[0])
		}
		return runPublish(cmd.Context(), a, stateDir, o, args[0])
	}
	c.AddCommand(newPublishServe(a, &stateDir), newPublishList(a, &stateDir), newPublishCleanup(a, &stateDir))
	return c
}

func newPublishServe(a *app, stateDir *string) *cobra.Command {
	var o publishOptions
	c := &cobra.Command{Use: "serve POINT [--mount-dir DIR]", Args: exactArgs(1),
		Short: "Publish a restore point in the foreground until stopped (for a service manager)",
		Long: `Publish a restore point in the foreground until stopped (for a service manager).

As publish, but this process serves the disks until SIGTERM or SIGINT, then
unpublishes. publish runs it in the background.`}
	f := c.Flags()
	f.StringVar(&o.mountDir, "mount-dir", "", "mount the filesystems under DIR/VM")
	f.IntVar(&o.cacheMiB, "cache", 256, "chunk cache per disk, MiB")
	f.StringVar(&o.id, "id", "", "session ID (set by publish for the serving process)")
	_ = f.MarkHidden("id")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		return runPublishServe(cmd.Context(), a, *stateDir, o, args[0])
	}
	return c
}

// publishRecords returns the session records of state directory dir
// (default publish.DefaultStateDir()).
func publishRecords(dir string) (publish.Records, error) {
	if dir == "" {
		dir = publish.DefaultStateDir()
	}
	abs, err := filepath.Abs(dir)
	return publish.Records{Dir: abs}, err
}

// runPublishServe publishes the point and serves it until ctx ends
// (SIGTERM from unpublish, SIGINT) or its FUSE mount goes, then
// unpublishes.
func runPublishServe(ctx context.Context, a *app, stateDir string, o publishOptions, ref string) error {
	if err := needRoot(); err != nil {
		return err
	}
	if o.id != "" && !publish.ValidID(o.id) {
		return usageError{fmt.Errorf("--id %q: not a publish session ID", o.id)}
	}
	recs, err := publishRecords(stateDir)
	if err != nil {
		return err
	}
	r, m, err := a.openPoint(ctx, ref)
	if err != nil {
		return err
	}
	defer r.Close()
	log := a.daemonLogger()
	s, err := publish.Publish(ctx, publish.Options{ID: o.id, Store: r, Holder: r, Point: m, MountDir: o.mountDir, StateDir: recs.Dir,
		CacheBytes: int64(o.cacheMiB) << 20, Logger: log, Clock: a.clock})
	if err != nil {
		return err
	}
	a.serviceReady(ctx, log)()
	log.Info("published", "session", s.ID, "point", s.Point, "vm", s.VM, "mount_dir", s.MountDir, "filesystems", len(s.Filesystems))
	gone := make(chan struct{})
	go func() { s.Wait(); close(gone) }()
	select {
	case <-ctx.Done():
	case <-gone:
		log.Warn("the FUSE mount of the disks went away: unpublishing", "session", s.ID)
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	if err := s.Close(cctx); err != nil {
		return fmt.Errorf("%w ('holdfast publish cleanup' retries once this process has ended)", err)
	}
	log.Info("unpublished", "session", s.ID)
	return nil
}

// runPublish runs `publish serve` in the background and waits until it
// has mounted everything.
func runPublish(ctx context.Context, a *app, stateDir string, o publishOptions, ref string) error {
	if err := needRoot(); err != nil {
		return err
	}
	recs, err := publishRecords(stateDir)
	if err != nil {
		return err
	}
	if err := recs.Prepare(); err != nil { // before the log is made there
		return err
	}
	id := publish.NewID()
	cmd, err := a.publishServeCommand(ctx, ref, recs.Dir, id, o)
	if err != nil {
		return err
	}
	var s *publish.Session
	logPath := recs.LogPath(id)
	err = background.Start(ctx, background.Options{Cmd: cmd, LogPath: logPath, What: "publish", Timeout: 5 * time.Minute,
		Clock: a.clock, Ready: func() bool {
			var err error
			s, err = recs.Load(id)
			return err == nil && s.State() == "published"
		}})
	if err != nil {
		_ = os.Remove(logPath)
		return err
	}
	return a.printPublished(s, o.asJSON)
}

// publishServeCommand is the `publish serve` process of session id; the
// password reaches it through its environment, never its arguments.
func (a *app) publishServeCommand(ctx context.Context, ref, stateDir, id string, o publishOptions) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"publish", "serve", ref, "--state-dir", stateDir, "--id", id, "--cache", strconv.Itoa(o.cacheMiB)}
	if o.mountDir != "" {
		abs, err := filepath.Abs(o.mountDir)
		if err != nil {
			return nil, err
		}
		args = append(args, "--mount-dir", abs)
	}
	return a.repoChild(ctx, self, args)
}

// printPublished prints a published session: lsblk-like, or JSON.
func (a *app) printPublished(s *publish.Session, asJSON bool) error {
	if asJSON {
		return printJSON(a.stdout, mustJSON(s))
	}
	fmt.Fprintf(a.stdout, "published %s: %s of %s under %s\n", s.ID, s.VM, s.Point, s.MountDir)
	if err := table(a.stdout, []string{"NAME", "SIZE", "RO", "TYPE", "FSTYPE", "MOUNTPOINT"}, lsblkRows(s)); err != nil {
		return err
	}
	for _, p := range s.Problems {
		fmt.Fprintf(a.stderr, "warning: %s\n", textsafe.Escape(p)) // tools' messages about guest volumes
	}
	return nil
}

// lsblkRows lists the disks with their partitions under them, then the
// logical volumes.
func lsblkRows(s *publish.Session) [][]string {
	var rows [][]string
	for _, d := range s.Disks {
		var parts []publish.Filesystem
		for _, f := range s.Filesystems {
			if f.Disk == d.Index && f.LV == "" && f.Partition > 0 {
				parts = append(parts, f)
			}
		}
		fstype, mp := "", ""
		for _, f := range s.Filesystems {
			if f.Disk == d.Index && f.LV == "" && f.Partition == 0 {
				fstype, mp = f.FSType, f.Mountpoint
			}
		}
		rows = append(rows, []string{filepath.Base(d.Loop), formatBytes(d.Size), "1", "disk", orDash(fstype), mp})
		for i, p := range parts {
			branch := "├─"
			if i == len(parts)-1 {
				branch = "└─"
			}
			rows = append(rows, []string{branch + filepath.Base(p.Device), formatBytes(p.Size), "1", "part", orDash(p.FSType), p.Mountpoint})
		}
	}
	for _, f := range s.Filesystems {
		if f.LV != "" {
			rows = append(rows, []string{strings.TrimPrefix(f.Device, "/dev/mapper/"), formatBytes(f.Size), "1", "lvm", orDash(f.FSType), f.Mountpoint})
		}
	}
	return rows
}

func newPublishList(a *app, stateDir *string) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: "list [--json]", Short: "List publish sessions: published, publishing, or lost (their process is gone)", Args: noArgs}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.RunE = func(_ *cobra.Command, _ []string) error {
		recs, err := publishRecords(*stateDir)
		if err != nil {
			return err
		}
		all, err := recs.List()
		if err != nil {
			return err
		}
		type row struct {
			*publish.Session
			State string `json:"state"`
		}
		rows := []row{}
		var cells [][]string
		for _, s := range all {
			rows = append(rows, row{s, s.State()})
			mounted := 0
			for _, f := range s.Filesystems {
				if f.Mountpoint != "" {
					mounted++
				}
			}
			cells = append(cells, []string{s.ID, s.VM, s.Point, s.State(), strconv.Itoa(s.PID),
				fmt.Sprintf("%d/%d", mounted, len(s.Filesystems)), s.MountDir})
		}
		if asJSON {
			return printJSON(a.stdout, mustJSON(rows))
		}
		return table(a.stdout, []string{"ID", "VM", "POINT", "STATE", "PID", "MOUNTED", "MOUNT-DIR"}, cells)
	}
	return c
}

func newPublishCleanup(a *app, stateDir *string) *cobra.Command {
	c := &cobra.Command{Use: "cleanup", Args: noArgs,
		Short: "Remove what killed publish processes left behind",
		Long: `Remove what killed publish processes left behind.

For every recorded publish session whose process is gone: unmount its
filesystems, deactivate its volume groups, remove its partition devices,
detach its loop devices, unmount its FUSE mount and remove the directories
it created — only what the session recorded — then its record. Sessions
whose process runs are left alone. Prints what was removed.`}
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := needRoot(); err != nil {
			return err
		}
		recs, err := publishRecords(*stateDir)
		if err != nil {
			return err
		}
		removed, err := publish.Cleanup(cmd.Context(), publish.Env{Records: recs, Clock: a.clock, Logger: a.logger()})
		for _, r := range removed {
			fmt.Fprintf(a.stdout, "removed %s\n", r)
		}
		if len(removed) == 0 && err == nil {
			fmt.Fprintln(a.stdout, "nothing to clean up")
		}
		return err
	}
	return c
}

func newUnpublishCommand(a *app) *cobra.Command {
	var stateDir string
	co := &clientOptions{}
	c := &cobra.Command{Use: "unpublish ID|DIR", Args: exactArgs(1),
		Short: "Take a published restore point down: unmount, detach, stop serving",
		Long: `Take a published restore point down: unmount, detach, stop serving.

ID is the session ID publish printed (pub-…) or its mount directory. The
serving process undoes every step in reverse order (umount, vgchange -an,
partx -d, losetup -d, FUSE unmount, the directories it created) and ends;
if that process is gone, unpublish cleans up from the session's record.
Through the server, ID is pub- and the session number that publish
printed, and the mount server does the same.`}
	addClientFlags(c, co)
	c.Flags().StringVar(&stateDir, "state-dir", "", "where publish sessions are recorded (default /run/holdfast/publish as root)")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if server, err := a.viaServer(co); err != nil {
			return err
		} else if server {
			return runServerUnpublish(cmd.Context(), a, co, args[0])
		}
		if err := needRoot(); err != nil {
			return err
		}
		recs, err := publishRecords(stateDir)
		if err != nil {
			return err
		}
		s, err := recs.Find(args[0])
		if err != nil {
			return err
		}
		removed, err := publish.Unpublish(cmd.Context(), publish.Env{Records: recs, Clock: a.clock, Logger: a.logger()}, s.ID)
		for _, r := range removed {
			fmt.Fprintf(a.stdout, "removed %s\n", r)
		}
		if err != nil {
			return err
		}
		_ = os.Remove(recs.LogPath(s.ID))
		fmt.Fprintf(a.stdout, "unpublished %s\n", s.ID)
		return nil
	}
	return c
}
