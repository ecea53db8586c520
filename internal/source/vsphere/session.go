package vsphere

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// ErrVMNotFound is matched by the error of an inventory path that names
// no VM.
var ErrVMNotFound = errors.New("vSphere VM not found")

// ErrNoDisks is matched when a VM has no disk to back up (none, or only
// independent and RDM disks).
var ErrNoDisks = errors.New("nothing to back up")

// Session is one prepared snapshot of a VM whose disks are ready to be
// read.
type Session struct {
	// Disks are the VM's backed-up disks in device order; each also
	// implements source.ChangeTracker.
	Disks []source.Disk
	// Notes go into the manifest: guest_quiesce, transport,
	// transport_choice, cleaned_leftovers, cbt_enabled.
	Notes map[string]string
	// Config is the VM's configuration at the snapshot.
	Config *repo.VMConfig
	// Warnings name the disks that were skipped (independent, RDM).
	Warnings []string

	o        Options
	c        *Client
	env      *Env
	snapshot *types.ManagedObjectReference
	snapTask *types.ManagedObjectReference // a snapshot task whose wait was cancelled
	snapName string
}

// Prepare logs in, finds the VM, removes snapshots an interrupted run
// left, turns changed block tracking on, takes the snapshot and opens its
// disks. On error it removes what it created and logs out.
func Prepare(ctx context.Context, o Options) (*Session, error) {
	o.defaults()
	if _, err := source.ParsePreference(string(o.Transport)); err != nil {
		return nil, err
	}
	c, err := Connect(ctx, o.Locator, o.Connect)
	if err != nil {
		return nil, err
	}
	s := &Session{o: o, c: c, Notes: map[string]string{}}
	if err := s.prepare(ctx); err != nil {
		if rerr := s.Release(ctx, false); rerr != nil {
			err = fmt.Errorf("%w (cleanup: %v)", err, rerr)
		}
		return nil, err
	}
	return s, nil
}

func (s *Session) prepare(ctx context.Context) error {
	vm, err := find.NewFinder(s.c.Client).VirtualMachine(ctx, s.o.Locator.Path)
	if err != nil {
		var nf *find.NotFoundError
		if errors.As(err, &nf) {
			return fmt.Errorf("%w: %s", ErrVMNotFound, s.o.Locator)
		}
		return fmt.Errorf("find VM %s: %w", s.o.Locator, err)
	}
	s.env = &Env{Client: s.c, VM: vm, Logger: s.o.Logger}
	var mvm mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"name", "config", "snapshot", "network"}, &mvm); err != nil {
		return fmt.Errorf("read VM %s: %w", s.o.Locator, err)
	}
	if mvm.Config == nil {
		return fmt.Errorf("VM %s: no configuration (is it inaccessible?)", s.o.Locator)
	}
	if err := s.cleanLeftovers(ctx, vm, mvm.Snapshot); err != nil {
		return err
	}
	if err := s.enableCBT(ctx, vm, mvm.Config); err != nil {
		return err
	}
	if err := s.takeSnapshot(ctx, vm); err != nil {
		return err
	}
	var snap mo.VirtualMachineSnapshot
	if err := vm.Properties(ctx, *s.snapshot, []string{"config"}, &snap); err != nil {
		return fmt.Errorf("read snapshot %s: %w", s.snapName, err)
	}
	s.env.Snapshot = *s.snapshot
	disks, skipped := snapshotDisks(datacenterPath(s.o.Locator), &snap.Config)
	s.Warnings = skipped
	for _, w := range skipped {
		s.o.Logger.Warn("disk not backed up", "vm", s.o.Locator.String(), "reason", w)
	}
	if len(disks) == 0 {
		return fmt.Errorf("%w: VM %s has no disk a snapshot covers (%s)", ErrNoDisks, s.o.Locator, strings.Join(skipped, "; "))
	}
	s.Config = vmConfig(ctx, s.c, &mvm, &snap.Config, disks, skipped)
	return s.openDisks(ctx, disks)
}

// openDisks opens every disk through the transports and wraps it with
// the session's changed block tracking.
func (s *Session) openDisks(ctx context.Context, disks []SnapshotDisk) error {
	var used []string
	var choices []string
	for _, d := range disks {
		sd, t, why, err := openAuto(ctx, s.env, s.o.Transport, s.o.Transports, d)
		choices = append(choices, fmt.Sprintf("disk %d: %s", d.Index, why))
		if err != nil {
			s.Notes["transport_choice"] = strings.Join(choices, "; ")
			return fmt.Errorf("disk %d (%s): %w", d.Index, d.File, err)
		}
		if !slices.Contains(used, string(t)) {
			used = append(used, string(t))
		}
		s.Disks = append(s.Disks, newCBTDisk(sd, s.env, d))
		if d.Index < len(s.o.PreviousChangeIDs) {
			if prev := s.o.PreviousChangeIDs[d.Index]; prev != "" && changeInstance(prev) != changeInstance(d.ChangeID) {
				s.o.Logger.Info("the previous point's change ID is of another tracking instance: the disk is read whole",
					"vm", s.o.Locator.String(), "disk", d.Index, "previous", prev, "now", d.ChangeID)
			}
		}
	}
	s.Notes["transport"] = strings.Join(used, ",")
	s.Notes["transport_choice"] = strings.Join(choices, "; ")
	return nil
}

// Release closes the disks, removes the snapshot and logs out, also when
// ctx was cancelled (Ctrl-C). committed says whether the restore point was
// written; the snapshot goes either way (CBT needs no snapshot kept).
func (s *Session) Release(ctx context.Context, committed bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	var errs []error
	for _, d := range s.Disks {
		errs = append(errs, d.Close())
	}
	s.Disks = nil
	if s.snapTask != nil { // interrupted while the snapshot was being taken
		if err := s.finishSnapshotTask(ctx); err != nil {
			s.o.Logger.Debug("the interrupted snapshot task failed", "vm", s.o.Locator.String(), "err", err)
		}
		s.snapTask = nil
	}
	if s.snapshot != nil {
		if err := removeSnapshot(ctx, s.c, *s.snapshot); err != nil {
			errs = append(errs, fmt.Errorf("remove snapshot %s of %s (the next backup removes it): %w", s.snapName, s.o.Locator, err))
		} else {
			s.o.Logger.Debug("removed snapshot", "vm", s.o.Locator.String(), "snapshot", s.snapName, "committed", committed)
		}
		s.snapshot = nil
	}
	if s.c != nil {
		s.c.Logout(ctx)
		s.c = nil
	}
	return errors.Join(errs...)
}

// datacenterPath is the inventory path of the VM's datacenter without
// the leading slash ("DC0", "Folder/DC1"): what comes before "/vm/".
func datacenterPath(l Locator) string {
	if i := strings.Index(l.Path, "/vm/"); i > 0 {
		return l.Path[1:i]
	}
	return l.Datacenter()
}

// removeSnapshot removes one snapshot, consolidating its disks.
func removeSnapshot(ctx context.Context, c *Client, ref types.ManagedObjectReference) error {
	consolidate := true
	res, err := methods.RemoveSnapshot_Task(ctx, c.Client, &types.RemoveSnapshot_Task{This: ref, Consolidate: &consolidate})
	if err != nil {
		return err
	}
	return waitTask(ctx, object.NewTask(c.Client, res.Returnval))
}

// waitTask waits for a task; a cancelled wait is an error (govmomi's Wait
// answers it with nil).
func waitTask(ctx context.Context, t *object.Task) error {
	if err := t.Wait(ctx); err != nil {
		return err
	}
	return context.Cause(ctx)
}
