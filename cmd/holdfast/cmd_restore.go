package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/fsmap"
	"github.com/holdfast-backup/holdfast/internal/pipeline"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/restorefs"
	"github.com/spf13/cobra"
)

type restoreOptions struct {
	disk     int
	to       string
	toFormat string
	rollback bool
	// rollbackVM is the VM of --rollback vsphere://…/VM.
	rollbackVM string
	vs         vsphereRestoreFlags
	lv         libvirtRestoreFlags
	force      bool
	workers    int
	asJSON     bool
	scan       scanFlags
}

// restoreJSON is the --json output of a standalone restore or rollback.
type restoreJSON struct {
	Point          string    `json:"point"`
	VM             string    `json:"vm"`
	Time           time.Time `json:"time"`
	Disk           int       `json:"disk"`
	To             string    `json:"to"`
	Format         string    `json:"format"`
	Rollback       bool      `json:"rollback"`
	BytesWritten   int64     `json:"bytes_written"`
	BytesZero      int64     `json:"bytes_zero"`
	ChunksCompared int       `json:"chunks_compared,omitempty"`
	ChunksWritten  int       `json:"chunks_written,omitempty"`
	Duration       float64   `json:"duration_seconds"`
	// BytesExcluded were left out at backup (free space, swap) and
	// restored as zeros; Excluded counts them per reason.
	BytesExcluded int64            `json:"bytes_excluded,omitempty"`
	Excluded      map[string]int64 `json:"excluded,omitempty"`
}

func newRestoreCommand(a *app) *cobra.Command {
	var o restoreOptions
	co := &clientOptions{}
	c := &cobra.Command{
		Use:   "restore POINT --disk N --to PATH [--to-format raw|qcow2] [--force | --rollback] | POINT --to-vsphere vsphere://USER@HOST/DC | POINT --to-libvirt [--name NEW] [--pool-dir DIR] [--start] | POINT --rollback vsphere://USER@HOST/DC/vm/…/VM --datastore-path DS=DIR",
		Short: "Restore one disk of a restore point to a file, block device or qcow2 image, or a whole VM to vSphere or libvirt",
		Long: `Restore disk N of POINT (an ID, a unique ID prefix, "latest", "VM:latest" or
"VM:latest~N", the Nth point before the newest)
to PATH. A raw file is written sparse where the disk had zeros; a block device
must be at least as large as the disk. A PATH ending in .qcow2 (or
--to-format qcow2) is written as a new qcow2 image through qemu-img and
qemu-nbd, with unallocated clusters where the disk had zeros.

An existing PATH is never destroyed by accident: a non-empty file or a
block device is refused (exit 2) unless --force is given, and a file or
device another process holds (a running VM's image, a mounted device) is
refused even then. A file is written under a temporary name beside PATH and
renamed over it only when the whole disk is restored and synced, so a
restore that fails (a damaged chunk, an interrupt) leaves PATH as it was. A
block device cannot be swapped like that: --force writes it in place.

With --rollback, PATH is an existing disk (raw file of the disk's size, block
device at least as large, or qcow2 image of the same virtual size) that is
brought back to POINT by rewriting only the chunks that differ from it. Stop
the VM first: nothing else may use the disk during a rollback (a qcow2 image
that a running QEMU holds is refused). An interrupted rollback leaves the disk
partly rolled back; run it again to complete it.

Through the server: with --server, or HOLDFAST_SERVER and no repository
given, POINT is a point the server's jobs made ('holdfast point list'), named
as above; a proxy restores the disk from its repository agent to PATH, an
absolute path on the proxy's host beneath one of the proxy's --restore-root
directories (--force as above; a relative PATH is refused). The command waits until a
proxy takes the restore (interrupting it before cancels the restore, which
then never runs), then for the session, and prints its result.

Secure restore: --scan first scans the point for malware (as 'holdfast scan',
with --engine, --clamav-db, --yara-rules; root and FUSE needed) and refuses
an infected point (exit 1) unless --on-infection continue, and a point it
could not scan (exit 7). Only with a local repository.

vSphere (a point of a vsphere:// VM, whose manifest records the VM's
configuration; local repository only): --to-vsphere creates the VM anew in
the datacenter (CPUs, memory, firmware, controllers, disks at their
controller and unit, NICs on the recorded networks or those --network maps,
with new MAC addresses unless it replaces the original), uploads every disk
through the datastore's HTTPS access (a flat extent, or with --sparse-upload
a sparse VMDK without the zero chunks that vSphere converts into a thin
disk), and with --power-on starts it. A VM of
that name is refused (exit 2) unless --force, which powers it off and
destroys it first. --rollback vsphere://…/VM writes into that powered-off
VM's own disks only what differs from POINT (the areas changed tracking
reports since the point, else every chunk compared), through the
directories where its datastores are mounted (--datastore-path NAME=DIR),
and resets its changed block tracking before the first write; --force rolls
back a VM that is not the one the point was taken of. The password comes
from --vsphere-password-file or $HOLDFAST_VSPHERE_PASSWORD.

` + libvirtRestoreHelp,
		Args: func(cmd *cobra.Command, args []string) error {
			_, err := o.pointArg(cmd, args)
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, _ := o.pointArg(cmd, args)
			args = []string{ref}
			if _, err := o.checkLibvirt(cmd); err != nil {
				return err
			}
			if server, err := a.viaServer(co); err != nil {
				return err
			} else if server && (o.vsphereRestore() || o.lv.to) {
				return usageError{errors.New("a restore to vSphere or libvirt needs a local repository (--repo)")}
			} else if o.lv.to {
				return runLibvirtRestore(cmd, a, o, ref)
			} else if o.vsphereRestore() {
				return runVSphereRestore(cmd, a, o, ref)
			} else if server {
				if o.scan.scan {
					return usageError{errors.New("--scan needs a local repository (--repo): through the server, scan first with holdfast scan")}
				}
				return runServerRestore(cmd, a, co, o, args[0])
			}
			return runRestore(cmd, a, o, args[0])
		},
	}
	addClientFlags(c, co)
	c.Flags().IntVar(&o.disk, "disk", 0, "disk number")
	c.Flags().StringVar(&o.to, "to", "", "destination file, block device or qcow2 image (required)")
	c.Flags().StringVar(&o.toFormat, "to-format", "", "destination format: raw or qcow2 (default: qcow2 for a .qcow2 name, else raw)")
	c.Flags().Var(rollbackFlag{on: &o.rollback, vm: &o.rollbackVM}, "rollback", "rewrite only the differing chunks of an existing disk (--to), or of a vSphere VM's disks (--rollback vsphere://…/VM)")
	c.Flags().Lookup("rollback").NoOptDefVal = "true"
	c.Flags().BoolVar(&o.force, "force", false, "replace an existing non-empty file, or write over a block device; with --to-vsphere or --to-libvirt, destroy and replace a VM or domain of the same name; with --rollback vsphere://…, roll back a VM the point was not taken of")
	c.Flags().BoolVar(&o.asJSON, "json", false, "print the result as JSON (through the server: the session's result)")
	c.Flags().IntVar(&o.workers, "workers", 0, "parallel chunk readers (default 2 × CPUs, and at least 16 for a full restore)")
	o.scan.add(c.Flags(), true)
	o.vs.register(c.Flags())
	o.lv.register(c.Flags())
	return c
}

// format returns the destination format: --to-format, else by name.
func (o restoreOptions) format() (string, error) {
	f, err := pipeline.TargetFormat(o.to, o.toFormat)
	if err != nil {
		return "", usageError{fmt.Errorf("--to-format: %w", err)}
	}
	return f, nil
}

func runRestore(cmd *cobra.Command, a *app, o restoreOptions, ref string) error {
	if o.to == "" {
		return usageError{fmt.Errorf("--to PATH is required")}
	}
	if o.force && o.rollback {
		return usageError{fmt.Errorf("--force and --rollback do not go together: a rollback rewrites the existing disk in place")}
	}
	format, err := o.format()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	r, m, err := a.openPoint(ctx, ref)
	if err != nil {
		return err
	}
	defer r.Close()
	if o.disk < 0 || o.disk >= len(m.Disks) {
		return usageError{fmt.Errorf("point %s has %d disk(s); --disk %d does not exist", m.ID, len(m.Disks), o.disk)}
	}
	if err := a.scanBefore(ctx, r, o.scan, m); err != nil {
		return err
	}
	d, err := restorefs.OpenDisk(ctx, r, m, o.disk, restorefs.StreamOptions())
	if err != nil {
		return err
	}
	defer d.Close()
	if o.rollback {
		return runRollback(ctx, a, d, m, o, format)
	}
	return runFullRestore(ctx, a, d, m, o, format)
}

func runFullRestore(ctx context.Context, a *app, d *restorefs.Disk, m *repo.Manifest, o restoreOptions, format string) error {
	ex := m.Disks[o.disk].Excluded
	t, err := pipeline.OpenTarget(ctx, o.to, d.Size(), pipeline.TargetOptions{Format: format, Force: o.force})
	if err != nil {
		return err
	}
	start := a.clock.Now()
	bar := newProgress(a.stderr, fmt.Sprintf("restore %s disk %d", m.ID, o.disk), d.Size())
	st, err := pipeline.RestoreDisk(ctx, d, t.RestoreTarget, pipeline.Options{Workers: o.workers, Progress: bar.Add})
	bar.Done(err)
	if err != nil {
		return t.Fail(err)
	}
	if err := t.Close(); err != nil {
		return err
	}
	took := a.clock.Since(start)
	if o.asJSON {
		return printJSON(a.stdout, mustJSON(restoreJSON{Point: m.ID, VM: m.VM, Time: m.Time, Disk: o.disk, To: o.to, Format: format,
			BytesWritten: st.BytesWritten, BytesZero: st.BytesZero, Duration: took.Seconds(),
			BytesExcluded: ex.Total(), Excluded: excludedBytes(ex)}))
	}
	fmt.Fprintf(a.stdout, "restored disk %d of %s (%s, %s) to %s in %s: %s written, %s zero\n", o.disk, m.ID, m.VM,
		m.Time.Local().Format("2006-01-02 15:04:05"), o.to, took.Round(time.Millisecond),
		formatBytes(st.BytesWritten), formatBytes(st.BytesZero))
	printExcludedNote(a, ex)
	return nil
}

// printExcludedNote says what the backup left out and the restore wrote
// as zeros.
func printExcludedNote(a *app, ex *repo.Excluded) {
	if ex.Total() == 0 {
		return
	}
	var why []string
	if ex.Bytes[fsmap.ReasonFree] > 0 {
		why = append(why, "free space")
	}
	if ex.Bytes[fsmap.ReasonSwap] > 0 {
		why = append(why, "swap")
	}
	if ex.Bytes[fsmap.ReasonPath] > 0 {
		why = append(why, "excluded paths")
	}
	fmt.Fprintf(a.stdout, "%d bytes were excluded at backup (%s) and restored as zeros\n", ex.Total(), strings.Join(why, ", "))
}

// rollbackTarget is an opened existing disk.
type rollbackTarget interface {
	pipeline.RollbackTarget
	Close() error
	Abort()
}

func openRollbackTarget(ctx context.Context, o restoreOptions, format string, size int64) (rollbackTarget, error) {
	isQcow2, err := hasQcow2Magic(o.to)
	if err != nil {
		return nil, err
	}
	switch {
	case format == "qcow2" && !isQcow2:
		return nil, fmt.Errorf("%s is not a qcow2 image; use --to-format raw to roll it back as a raw disk", o.to)
	case format == "raw" && isQcow2 && o.toFormat == "":
		return nil, fmt.Errorf("%s looks like a qcow2 image; pass --to-format qcow2 (or raw if it really is a raw disk)", o.to)
	case format == "qcow2":
		return pipeline.OpenExistingQcow2Target(ctx, o.to, size)
	}
	return pipeline.OpenRollbackFile(o.to, size)
}

// hasQcow2Magic reports whether path starts with the qcow2 magic.
func hasQcow2Magic(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("--rollback needs an existing disk: %w", err)
	}
	defer f.Close()
	var b [4]byte
	if _, err := io.ReadFull(f, b[:]); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	return string(b[:]) == "QFI\xfb", nil
}

func runRollback(ctx context.Context, a *app, d *restorefs.Disk, m *repo.Manifest, o restoreOptions, format string) error {
	t, err := openRollbackTarget(ctx, o, format, d.Size())
	if err != nil {
		return err
	}
	start := a.clock.Now()
	bar := newProgress(a.stderr, fmt.Sprintf("rollback %s disk %d", m.ID, o.disk), d.Size())
	st, err := pipeline.RollbackDisk(ctx, d, t, pipeline.Options{Workers: o.workers, Progress: bar.Add})
	bar.Done(err)
	if err != nil {
		t.Abort()
		return fmt.Errorf("rollback of %s failed after rewriting %d chunk(s) (the disk is partly rolled back; run it again): %w",
			o.to, st.ChunksWritten, err)
	}
	if err := t.Close(); err != nil {
		return err
	}
	took := a.clock.Since(start)
	if o.asJSON {
		return printJSON(a.stdout, mustJSON(restoreJSON{Point: m.ID, VM: m.VM, Time: m.Time, Disk: o.disk, To: o.to, Format: format,
			Rollback: true, BytesWritten: st.BytesWritten, ChunksCompared: st.ChunksCompared, ChunksWritten: st.ChunksWritten,
			Duration: took.Seconds(), BytesExcluded: m.Disks[o.disk].Excluded.Total(), Excluded: excludedBytes(m.Disks[o.disk].Excluded)}))
	}
	fmt.Fprintf(a.stdout, "rolled back disk %d of %s into %s: compared %d chunks, rewrote %d (%s) in %s\n", o.disk, m.ID, o.to,
		st.ChunksCompared, st.ChunksWritten, formatBytes(st.BytesWritten), took.Round(time.Millisecond))
	printExcludedNote(a, m.Disks[o.disk].Excluded)
	return nil
}
