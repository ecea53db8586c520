package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/guestfiles"
	"github.com/holdfast-backup/holdfast/internal/guestfs"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/holdfast-backup/holdfast/internal/textsafe"
	"github.com/spf13/cobra"
)

func newFilesCommand(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "files",
		Short: "List, find, restore and compare guest files of a restore point (no root, no mount)",
		Long: `Read the guest filesystems (ext2/3/4, xfs) of a restore point's disks in
Holdfast itself, through the repository: no root, no loop device, no mount,
no copy of the disk.

A point is addressed as POINT[:DISK[:PART]]: POINT as for restore (an ID, a
unique ID prefix, "latest" or "VM:latest"), DISK the disk number and PART
the partition number as Linux numbers them (disk 0 partition 2 is what the
kernel would call sda2; 0 is a disk without a partition table). Without
DISK, a point with one readable filesystem is used directly; with several,
its volumes are the top directories (disk0-p1, disk0-p2, disk1 …).`,
	}
	c.AddCommand(newFilesLsCommand(a), newFilesFindCommand(a), newFilesRestoreCommand(a), newFilesDiffCommand(a))
	return c
}

// pointTree is a point's guest volumes, open until close.
type pointTree struct {
	*guestfiles.Tree
	m     *repo.Manifest
	sel   string
	close func()
}

// openPointTree opens every disk of the point named by addr
// (POINT[:DISK[:PART]]) through restorefs and reads its volumes.
func openPointTree(ctx context.Context, r *repo.Repository, addr string) (*pointTree, error) {
	ref, sel := guestfiles.SplitAddress(addr)
	m, err := r.ResolvePoint(ctx, ref)
	if err != nil {
		return nil, err
	}
	var disks []*restorefs.Disk
	closeAll := func() {
		for _, d := range disks {
			_ = d.Close()
		}
	}
	var gds []guestfiles.Disk
	for i := range m.Disks {
		d, err := restorefs.OpenDisk(ctx, r, m, i, restorefs.Options{})
		if err != nil {
			closeAll()
			return nil, err
		}
		disks = append(disks, d)
		gds = append(gds, d)
	}
	t, err := guestfiles.OpenTree(gds)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("point %s: %w", m.ID, err)
	}
	return &pointTree{Tree: t, m: m, sel: sel, close: closeAll}, nil
}

// locate maps a guest path to a volume and a path in it: the selected
// volume, else Tree.Locate. A nil volume is the top (the list of volumes).
func (t *pointTree) locate(p string) (*guestfiles.Volume, string, error) {
	if t.sel != "" {
		v, err := t.Volume(t.sel)
		return v, p, err
	}
	return t.Locate(p)
}

// prefix is how paths of v are shown: "" when v is the only volume shown.
func (t *pointTree) prefix(v *guestfiles.Volume) string {
	if t.sel != "" || t.Single() != nil {
		return ""
	}
	return "/" + v.Name
}

func (a *app) withPointTree(cmd *cobra.Command, addr string, fn func(*pointTree) error) error {
	ctx := cmd.Context()
	r, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	t, err := openPointTree(ctx, r, addr)
	if err != nil {
		return err
	}
	defer t.close()
	return fn(t)
}

// fileEntry is one guest file as ls and find print it.
type fileEntry struct {
	Volume string    `json:"volume,omitempty"`
	Path   string    `json:"path"`
	Name   string    `json:"name"`
	Type   string    `json:"type"`
	Target string    `json:"target,omitempty"`
	Error  string    `json:"error,omitempty"`
	Stat   *fileStat `json:"stat,omitempty"`
}

type fileStat struct {
	guestfs.Stat
	ModeString string `json:"mode_string"`
}

func fileType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "file"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeNamedPipe != 0:
		return "fifo"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "other"
}

func newEntry(fsys *guestfs.FS, volume, shown string, st guestfs.Stat) fileEntry {
	e := fileEntry{Volume: volume, Path: shown, Name: path.Base(shown), Type: fileType(st.Mode), Stat: &fileStat{Stat: st, ModeString: st.Mode.String()}}
	if st.Mode&fs.ModeSymlink != 0 {
		if target, err := fsys.ReadlinkInode(st.Ino); err == nil {
			e.Target = target
		} else {
			e.Error = err.Error()
		}
	}
	return e
}

// printEntries prints entries one per line (long: ls -l columns) or as JSON.
func (a *app) printEntries(es []fileEntry, long, asJSON bool) error {
	if asJSON {
		if es == nil {
			es = []fileEntry{}
		}
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(es)
	}
	for _, e := range es {
		name := textsafe.Escape(e.Path) // guest names: no control bytes reach the terminal
		if !long || e.Stat == nil {
			if e.Error != "" {
				name += "  (" + textsafe.Escape(e.Error) + ")"
			}
			fmt.Fprintln(a.stdout, name)
			continue
		}
		st := e.Stat
		line := fmt.Sprintf("%s %3d %5d %5d %12d %s %s", st.ModeString, st.Nlink, st.UID, st.GID, st.Size, st.Mtime.Format("2006-01-02 15:04:05"), name)
		if e.Target != "" {
			line += " -> " + textsafe.Escape(e.Target)
		}
		fmt.Fprintln(a.stdout, line)
	}
	return nil
}

func newFilesLsCommand(a *app) *cobra.Command {
	var long, asJSON bool
	c := &cobra.Command{
		Use:   "ls POINT[:DISK[:PART]] [PATH] [-l] [--json]",
		Short: "List a guest directory (or show one file) of a restore point",
		Long: `List directory PATH (default /) of a guest filesystem of POINT, or show
PATH itself when it is not a directory. -l prints mode, links, owner, group,
size and modification time; --json prints every field, inode numbers included.
A path that is not there is an error (exit 1).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usageError{fmt.Errorf("%s needs POINT and at most one PATH (see --help)", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/"
			if len(args) == 2 {
				p = args[1]
			}
			return a.withPointTree(cmd, args[0], func(t *pointTree) error {
				es, err := listPath(t, p)
				if err != nil {
					return err
				}
				return a.printEntries(es, long, asJSON)
			})
		},
	}
	c.Flags().BoolVarP(&long, "long", "l", false, "long listing: mode, links, owner, size, time")
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return c
}

func listPath(t *pointTree, p string) ([]fileEntry, error) {
	v, rel, err := t.locate(p)
	if err != nil {
		return nil, err
	}
	if v == nil { // the top of a point with several volumes
		var es []fileEntry
		for _, vol := range t.Volumes {
			e := fileEntry{Volume: vol.Name, Path: "/" + vol.Name, Name: vol.Name, Type: "volume"}
			if vol.Err != nil {
				e.Error = vol.Err.Error()
			} else if st, err := vol.FS.Lstat("/"); err == nil {
				e.Stat = &fileStat{Stat: st, ModeString: st.Mode.String()}
			}
			es = append(es, e)
		}
		return es, nil
	}
	st, err := v.FS.Lstat(rel)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", v.Name, err)
	}
	shown := path.Join(t.prefix(v), "/", rel)
	if !st.Mode.IsDir() {
		return []fileEntry{newEntry(v.FS, v.Name, shown, st)}, nil
	}
	ds, err := v.FS.ReadDirInode(st.Ino)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", v.Name, shown, err)
	}
	es := make([]fileEntry, 0, len(ds))
	for _, d := range ds {
		cp := path.Join(shown, d.Name)
		cst, err := v.FS.Inode(d.Ino)
		if err != nil {
			es = append(es, fileEntry{Volume: v.Name, Path: cp, Name: d.Name, Type: "damaged", Error: err.Error()})
			continue
		}
		es = append(es, newEntry(v.FS, v.Name, cp, cst))
	}
	return es, nil
}

func newFilesFindCommand(a *app) *cobra.Command {
	var long, asJSON bool
	c := &cobra.Command{
		Use:   "find POINT[:DISK[:PART]] PATTERN [-l] [--json]",
		Short: "Find guest files by a glob on the name or the path, across all volumes",
		Long: `Print every guest file of POINT whose name matches PATTERN (a glob: *, ?,
[a-z]; quote it for the shell), or whose path matches it when PATTERN holds a
slash ("/etc/*.conf"). Every readable volume is searched unless DISK[:PART]
names one.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withPointTree(cmd, args[0], func(t *pointTree) error {
				vols := t.Readable()
				if t.sel != "" {
					v, err := t.Volume(t.sel)
					if err != nil {
						return err
					}
					vols = []*guestfiles.Volume{v}
				}
				var es []fileEntry
				for _, v := range vols {
					err := guestfiles.Find(v.FS, args[1], func(p string, st guestfs.Stat) error {
						es = append(es, newEntry(v.FS, v.Name, t.prefix(v)+p, st))
						return cmd.Context().Err()
					})
					if err != nil {
						return fmt.Errorf("%s: %w", v.Name, err)
					}
				}
				return a.printEntries(es, long, asJSON)
			})
		},
	}
	c.Flags().BoolVarP(&long, "long", "l", false, "long listing: mode, links, owner, size, time")
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return c
}

type filesRestoreOptions struct {
	to          string
	force       bool
	setID       bool
	allowShared bool
	asJSON      bool
}

func newFilesRestoreCommand(a *app) *cobra.Command {
	var o filesRestoreOptions
	c := &cobra.Command{
		Use:   "restore POINT[:DISK[:PART]] PATH... --to DIR [--force] [--keep-setid] [--allow-shared-extents] [--json]",
		Short: "Restore guest files and directories of a restore point to a local directory",
		Long: `Restore each PATH (a file, a symlink or a whole directory tree) of POINT's
guest filesystem to DIR, at its path from the guest's root: /etc/hosts goes
to DIR/etc/hosts (DIR/disk0-p1/etc/hosts when the point's volumes are the
top directories). DIR is made when missing.

Kept: contents (sparse files stay sparse: only their data is written),
permissions with the sticky bit, modification and access times, symlinks
(never followed), hard links among the files restored, FIFOs, and owners
when run as root (as another user the files are yours; a note says so).
Setuid/setgid bits are dropped (one warning) and device nodes skipped unless
--keep-setid: a hostile guest's setuid-root program or a device node of a
host disk would give whoever reaches DIR root on this host.
Nothing is written outside DIR: a symbolic link in DIR on the way is refused,
and guest names that are not plain names ("..", a slash, NUL, longer than 255
bytes) are skipped with a warning. An existing file is never replaced
without --force (exit 2); existing directories are merged into.
Files may share data blocks (reflinks), but a hostile image can point every
file at the same blocks: the data restored from one volume stops at 4 times
the volume's size (the files past it are named in warnings, exit 1) unless
--allow-shared-extents.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return usageError{fmt.Errorf("%s needs POINT and at least one PATH (see --help)", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.to == "" {
				return usageError{fmt.Errorf("--to DIR is required")}
			}
			return a.withPointTree(cmd, args[0], func(t *pointTree) error {
				return runFilesRestore(cmd.Context(), a, t, args[1:], o)
			})
		},
	}
	c.Flags().StringVar(&o.to, "to", "", "destination directory (required)")
	c.Flags().BoolVar(&o.force, "force", false, "replace existing files (never directories)")
	c.Flags().BoolVar(&o.setID, "keep-setid", false, "keep setuid/setgid bits and make device nodes (as root): only for guests you trust")
	c.Flags().BoolVar(&o.allowShared, "allow-shared-extents", false, fmt.Sprintf("restore files sharing data blocks even past %d times the volume's size", guestfiles.SharedFactor))
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the result as JSON")
	return c
}

func runFilesRestore(ctx context.Context, a *app, t *pointTree, paths []string, o filesRestoreOptions) error {
	owners := os.Geteuid() == 0
	if !owners {
		fmt.Fprintln(a.stderr, "holdfast: note: not running as root: owners are not restored (the files belong to you)")
	}
	// group the paths by volume, keeping their order
	type job struct {
		v     *guestfiles.Volume
		paths []string
	}
	var jobs []*job
	for _, p := range paths {
		v, rel, err := t.locate(p)
		if err != nil {
			return err
		}
		if v == nil {
			return usageError{fmt.Errorf("%s is the list of volumes: name a volume (/%s) or give DISK:PART", p, t.Volumes[0].Name)}
		}
		var j *job
		for _, x := range jobs {
			if x.v == v {
				j = x
			}
		}
		if j == nil {
			j = &job{v: v}
			jobs = append(jobs, j)
		}
		j.paths = append(j.paths, rel)
	}
	var total guestfiles.RestoreResult
	var damaged error
	for _, j := range jobs {
		res, err := guestfiles.Restore(ctx, j.v.FS, j.paths, o.to, guestfiles.RestoreOptions{
			Force: o.force, Owners: owners, SetID: o.setID, AllowShared: o.allowShared, Volume: j.v.Name, Prefix: strings.TrimPrefix(t.prefix(j.v), "/"),
			Warn: func(s string) { fmt.Fprintf(a.stderr, "holdfast: warning: %s\n", textsafe.Escape(s)) },
		})
		addResult(&total, res)
		if (errors.Is(err, guestfs.ErrCorrupt) && res.Damaged > 0) || errors.Is(err, guestfiles.ErrSharedData) {
			damaged = errors.Join(damaged, err) // the rest was restored: go on, report at the end
			continue
		}
		if err != nil {
			return err
		}
	}
	if err := a.printRestored(total, o); err != nil {
		return err
	}
	return damaged
}

// printRestored prints what files restore wrote.
func (a *app) printRestored(total guestfiles.RestoreResult, o filesRestoreOptions) error {
	if o.asJSON {
		return json.NewEncoder(a.stdout).Encode(total)
	}
	fmt.Fprintf(a.stdout, "restored %d files (%s of data), %d directories, %d symlinks, %d hard links, %d other to %s",
		total.Files, formatBytes(total.Bytes), total.Dirs, total.Symlinks, total.HardLinks, total.Other, o.to)
	if total.Skipped > 0 {
		fmt.Fprintf(a.stdout, "; %d skipped (see the warnings)", total.Skipped)
	}
	fmt.Fprintln(a.stdout)
	return nil
}

func addResult(t *guestfiles.RestoreResult, r guestfiles.RestoreResult) {
	t.Files += r.Files
	t.Dirs += r.Dirs
	t.Symlinks += r.Symlinks
	t.HardLinks += r.HardLinks
	t.Other += r.Other
	t.Bytes += r.Bytes
	t.Skipped += r.Skipped
	t.Damaged += r.Damaged
	t.SetIDDropped += r.SetIDDropped
	t.SharedRefused += r.SharedRefused
}

func newFilesDiffCommand(a *app) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "diff POINT1[:DISK[:PART]] POINT2[:DISK[:PART]] [PATH] [--json]",
		Short: "Show which guest files were added, removed or changed between two points",
		Long: `Compare the guest files under PATH (default /) of two restore points, by
name: "+" added in POINT2, "-" removed, "M" changed, with why: type, mode,
owner, size, mtime, target (a symlink's), or content — when size and mtime
match, the bytes are compared, so a change that kept both shows (a file whose
data lies in the same chunks of both points is known equal without reading it).
Volumes are paired by name (disk0-p1 with disk0-p1) unless DISK:PART is given.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 || len(args) > 3 {
				return usageError{fmt.Errorf("%s needs POINT1 POINT2 [PATH] (see --help)", cmd.CommandPath())}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			p := "/"
			if len(args) == 3 {
				p = args[2]
			}
			return runFilesDiff(cmd.Context(), a, args[0], args[1], p, asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return c
}

type fileChange struct {
	Volume string `json:"volume"`
	guestfiles.Change
}

func runFilesDiff(ctx context.Context, a *app, addr1, addr2, p string, asJSON bool) error {
	r, err := a.openRepo(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	t1, err := openPointTree(ctx, r, addr1)
	if err != nil {
		return err
	}
	defer t1.close()
	t2, err := openPointTree(ctx, r, addr2)
	if err != nil {
		return err
	}
	defer t2.close()
	pairs, err := pairVolumes(t1, t2)
	if err != nil {
		return err
	}
	changes := []fileChange{}
	for _, pr := range pairs {
		err := guestfiles.DiffVolumes(ctx, t1.Tree, pr[0], t2.Tree, pr[1], p, func(c guestfiles.Change) error {
			if len(pairs) > 1 {
				c.Path = "/" + pr[1].Name + c.Path
			}
			changes = append(changes, fileChange{Volume: pr[1].Name, Change: c})
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", pr[1].Name, err)
		}
	}
	if asJSON {
		return json.NewEncoder(a.stdout).Encode(changes)
	}
	for _, c := range changes {
		mark := map[string]string{guestfiles.Added: "+", guestfiles.Removed: "-", guestfiles.Changed: "M"}[c.Kind]
		line := mark + " " + textsafe.Escape(c.Path)
		if len(c.Reasons) > 0 {
			line += " (" + strings.Join(c.Reasons, ", ") + ")"
		}
		fmt.Fprintln(a.stdout, line)
	}
	return nil
}

// pairVolumes pairs the volumes diff compares: the selected or only ones,
// else the readable volumes of the same name.
func pairVolumes(t1, t2 *pointTree) ([][2]*guestfiles.Volume, error) {
	one := func(t *pointTree) (*guestfiles.Volume, error) {
		if t.sel != "" {
			return t.Volume(t.sel)
		}
		return t.Single(), nil
	}
	v1, err := one(t1)
	if err != nil {
		return nil, err
	}
	v2, err := one(t2)
	if err != nil {
		return nil, err
	}
	if v1 != nil && v2 != nil {
		return [][2]*guestfiles.Volume{{v1, v2}}, nil
	}
	var pairs [][2]*guestfiles.Volume
	for _, a := range t1.Readable() {
		for _, b := range t2.Readable() {
			if a.Name == b.Name {
				pairs = append(pairs, [2]*guestfiles.Volume{a, b})
			}
		}
	}
	if len(pairs) == 0 {
		return nil, fmt.Errorf("%w: the points have no readable volume of the same name (give DISK:PART)", guestfiles.ErrNoVolume)
	}
	return pairs, nil
}
