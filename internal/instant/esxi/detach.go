package esxi

import (
	"context"
	"errors"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Detach undoes what Attach set up for session id, as far as its record
// says it got: the VM (unless migrated) is powered off and unregistered,
// never destroyed; the NAS datastore is removed. What is already gone is
// skipped, so Detach can be repeated. A session without an ESXi record is
// returned as it is.
func Detach(ctx context.Context, c *vsphere.Client, reg instant.Registry, id string) (instant.Record, error) {
	rec, err := reg.Load(id)
	if err != nil || rec.ESXi == nil || rec.ESXi.Removed {
		return rec, err
	}
	er := *rec.ESXi
	loc, err := vsphere.ParseURL(er.Locator)
	if err != nil {
		return rec, err
	}
	f := find.NewFinder(c.Client, true)
	dc, err := f.Datacenter(ctx, loc.Datacenter())
	if err != nil {
		return rec, fmt.Errorf("%s: %w", loc, err)
	}
	f.SetDatacenter(dc)
	if er.MigratedTo == "" {
		if err := unregister(ctx, c, dc, er); err != nil {
			return rec, err
		}
	}
	if err := removeDatastore(ctx, c, f, er); err != nil {
		return rec, err
	}
	er.Removed = true
	return save(reg, id, &er)
}

// unregister powers the session's VM off and unregisters it, found by its
// reference or else by its .vmx path; a VM that is gone is skipped.
func unregister(ctx context.Context, c *vsphere.Client, dc *object.Datacenter, er instant.ESXiRecord) error {
	var vm *object.VirtualMachine
	switch {
	case er.VMRef != "":
		vm = object.NewVirtualMachine(c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: er.VMRef})
	case er.VMPath != "":
		ref, err := object.NewSearchIndex(c.Client).FindByDatastorePath(ctx, dc, er.VMPath)
		if err != nil {
			return fmt.Errorf("find the VM %s: %w", er.VMPath, err)
		}
		if ref == nil {
			return nil
		}
		vm = object.NewVirtualMachine(c.Client, ref.Reference())
	default:
		return nil
	}
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"runtime.powerState"}, &m); err != nil {
		if fault.Is(err, &types.ManagedObjectNotFound{}) {
			return nil // unregistered already
		}
		return fmt.Errorf("VM %s: %w", er.VMName, err)
	}
	if m.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		task, err := vm.PowerOff(ctx)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil && !fault.Is(err, &types.InvalidPowerState{}) {
			return fmt.Errorf("power off %s: %w", er.VMName, err)
		}
	}
	if err := vm.Unregister(ctx); err != nil && !fault.Is(err, &types.ManagedObjectNotFound{}) {
		return fmt.Errorf("unregister %s: %w", er.VMName, err)
	}
	return nil
}

// removeDatastore removes the session's NAS datastore from its host,
// found by its reference or else by its name; one that is gone is skipped.
func removeDatastore(ctx context.Context, c *vsphere.Client, f *find.Finder, er instant.ESXiRecord) error {
	var ds *object.Datastore
	if er.DatastoreRef != "" {
		ds = object.NewDatastore(c.Client, types.ManagedObjectReference{Type: "Datastore", Value: er.DatastoreRef})
	} else {
		var nf *find.NotFoundError
		found, err := f.Datastore(ctx, er.Datastore)
		if errors.As(err, &nf) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("find datastore %s: %w", er.Datastore, err)
		}
		ds = found
	}
	host := object.NewHostSystem(c.Client, types.ManagedObjectReference{Type: "HostSystem", Value: er.Host})
	dss, err := host.ConfigManager().DatastoreSystem(ctx)
	if err != nil {
		return fmt.Errorf("host %s: %w", er.Host, err)
	}
	if err := dss.Remove(ctx, ds); err != nil && !fault.Is(err, &types.ManagedObjectNotFound{}) && !fault.Is(err, &types.NotFound{}) {
		return fmt.Errorf("remove datastore %s: %w", er.Datastore, err)
	}
	return nil
}

// Migrate relocates session id's VM onto production datastore ds (Storage
// vMotion), records that it is no longer the session's, and removes the
// NAS datastore. Stopping the session is the caller's next step.
func Migrate(ctx context.Context, c *vsphere.Client, reg instant.Registry, id, ds string) (instant.Record, error) {
	rec, err := reg.Load(id)
	if err != nil {
		return rec, err
	}
	er := rec.ESXi
	if er == nil || er.Removed || er.VMRef == "" {
		return rec, fmt.Errorf("session %s: %w", id, ErrNotAttached)
	}
	if er.MigratedTo == "" {
		loc, err := vsphere.ParseURL(er.Locator)
		if err != nil {
			return rec, err
		}
		f := find.NewFinder(c.Client, true)
		dc, err := f.Datacenter(ctx, loc.Datacenter())
		if err != nil {
			return rec, fmt.Errorf("%s: %w", loc, err)
		}
		f.SetDatacenter(dc)
		target, err := f.Datastore(ctx, ds)
		if err != nil {
			return rec, fmt.Errorf("datastore %s: %w", ds, err)
		}
		ref := target.Reference()
		vm := object.NewVirtualMachine(c.Client, types.ManagedObjectReference{Type: "VirtualMachine", Value: er.VMRef})
		task, err := vm.Relocate(ctx, types.VirtualMachineRelocateSpec{Datastore: &ref}, types.VirtualMachineMovePriorityDefaultPriority)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			return rec, fmt.Errorf("relocate %s to datastore %s: %w", er.VMName, ds, err)
		}
		moved := *er
		moved.MigratedTo = ds
		if _, err := save(reg, id, &moved); err != nil {
			return rec, err
		}
	}
	return Detach(ctx, c, reg, id)
}
