package vsphere

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

// snapshotPrefix starts the name of every snapshot a session takes:
// "holdfast-<tag>-<UTC time>".
func snapshotPrefix(tag string) string { return "holdfast-" + tag + "-" }

// cleanLeftovers removes the snapshots named holdfast-<tag>-… an
// interrupted run left behind and notes them.
func (s *Session) cleanLeftovers(ctx context.Context, vm *object.VirtualMachine, info *types.VirtualMachineSnapshotInfo) error {
	if info == nil {
		return nil
	}
	prefix := snapshotPrefix(s.o.Tag)
	var cleaned []string
	var walk func(list []types.VirtualMachineSnapshotTree) error
	walk = func(list []types.VirtualMachineSnapshotTree) error {
		for _, t := range list {
			if err := walk(t.ChildSnapshotList); err != nil {
				return err
			}
			if !strings.HasPrefix(t.Name, prefix) {
				continue
			}
			if err := removeSnapshot(ctx, s.c, t.Snapshot); err != nil {
				return fmt.Errorf("remove leftover snapshot %q of %s: %w", t.Name, s.o.Locator, err)
			}
			s.o.Logger.Warn("removed the snapshot of an interrupted backup", "vm", s.o.Locator.String(), "snapshot", t.Name)
			cleaned = append(cleaned, "snapshot "+t.Name)
		}
		return nil
	}
	if err := walk(info.RootSnapshotList); err != nil {
		return err
	}
	if len(cleaned) > 0 {
		s.Notes["cleaned_leftovers"] = strings.Join(cleaned, ", ")
	}
	return nil
}

// enableCBT turns changed block tracking on when it is off; the snapshot
// taken next makes it effective.
func (s *Session) enableCBT(ctx context.Context, vm *object.VirtualMachine, cfg *types.VirtualMachineConfigInfo) error {
	if cfg.ChangeTrackingEnabled != nil && *cfg.ChangeTrackingEnabled {
		s.Notes["cbt_enabled"] = "already on"
		return nil
	}
	on := true
	task, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{ChangeTrackingEnabled: &on})
	if err == nil {
		err = waitTask(ctx, task)
	}
	if err != nil {
		return fmt.Errorf("enable changed block tracking on %s: %w", s.o.Locator, err)
	}
	s.Notes["cbt_enabled"] = "turned on by this backup (it was off)"
	s.o.Logger.Info("enabled changed block tracking", "vm", s.o.Locator.String())
	return nil
}

// takeSnapshot creates the backup's snapshot without memory, quiesced
// when asked; a failed quiesced snapshot falls back to a crash-consistent
// one with a warning.
func (s *Session) takeSnapshot(ctx context.Context, vm *object.VirtualMachine) error {
	s.snapName = snapshotPrefix(s.o.Tag) + s.o.Clock.Now().UTC().Format("20060102T150405Z")
	desc := "Holdfast backup in progress; removed when it ends (or by the next backup)"
	if !s.o.Quiesce {
		s.Notes["guest_quiesce"] = "crash-consistent: quiescing not asked for"
		return s.createSnapshot(ctx, vm, desc, false)
	}
	err := s.createSnapshot(ctx, vm, desc, true)
	if err == nil {
		s.Notes["guest_quiesce"] = "quiesced through VMware Tools"
		return nil
	}
	if ctx.Err() != nil {
		return err
	}
	s.Notes["guest_quiesce"] = fmt.Sprintf("crash-consistent: the quiesced snapshot failed (%v)", err)
	s.o.Logger.Warn("quiesced snapshot failed; taking a crash-consistent one", "vm", s.o.Locator.String(), "err", err)
	return s.createSnapshot(ctx, vm, desc, false)
}

func (s *Session) createSnapshot(ctx context.Context, vm *object.VirtualMachine, desc string, quiesce bool) error {
	res, err := methods.CreateSnapshot_Task(ctx, s.c.Client, &types.CreateSnapshot_Task{This: vm.Reference(),
		Name: s.snapName, Description: desc, Memory: false, Quiesce: quiesce})
	if err != nil {
		return fmt.Errorf("create snapshot of %s: %w", s.o.Locator, err)
	}
	task := res.Returnval
	s.snapTask = &task // until its result is known: Release waits for it
	err = s.finishSnapshotTask(ctx)
	if err != nil {
		return fmt.Errorf("create snapshot of %s: %w", s.o.Locator, err)
	}
	return nil
}

// finishSnapshotTask waits for the snapshot task and keeps its snapshot.
// A cancelled wait leaves the task for Release, which waits again on a
// context of its own and removes what the task made.
func (s *Session) finishSnapshotTask(ctx context.Context) error {
	info, err := object.NewTask(s.c.Client, *s.snapTask).WaitForResult(ctx, nil)
	if err == nil && info == nil { // govmomi answers a cancelled wait with neither
		err = context.Cause(ctx)
		if err == nil {
			err = errors.New("the task wait ended without a result")
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			s.snapTask = nil // the task failed: no snapshot
		}
		return err
	}
	s.snapTask = nil
	ref, ok := info.Result.(types.ManagedObjectReference)
	if !ok {
		return fmt.Errorf("the task returned %T, not a snapshot", info.Result)
	}
	s.snapshot = &ref
	return nil
}
