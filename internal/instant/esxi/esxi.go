package esxi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// Sentinel errors.
var (
	// ErrTarget is matched by the error of a --vsphere path that does not
	// name a host or cluster.
	ErrTarget = errors.New("not an ESXi host or cluster")
	// ErrNotAttached: the session has no VM on an ESXi host (to migrate).
	ErrNotAttached = errors.New("the session has no VM on an ESXi host")
)

// Options say where a session's VM goes.
type Options struct {
	// Target is vsphere://USER@HOST/DC/host/CLUSTER-OR-HOST[/HOSTNAME]: a
	// standalone host, a host of a cluster, or a cluster (its first
	// connected host outside maintenance mode).
	Target vsphere.Locator
	// RemoteHost is the NFS server's address as the ESXi host reaches it.
	RemoteHost string
	// Datastore names the NAS datastore ("": holdfast-ID).
	Datastore string
	// VMName names the registered VM ("": the point's VM name-ID).
	VMName  string
	PowerOn bool
}

// target is a resolved Options.Target.
type target struct {
	dc   *object.Datacenter
	host *object.HostSystem
	pool *object.ResourcePool
}

// Attach mounts session id's NFS export on the target host as a datastore
// and registers (and powers on) its VM, recording each step in the
// session's record. If a step fails, what the earlier ones created is
// undone (Detach) and the error says what failed.
func Attach(ctx context.Context, c *vsphere.Client, reg instant.Registry, id string, o Options) (instant.Record, error) {
	rec, err := reg.Load(id)
	if err != nil {
		return rec, err
	}
	if rec.NFSPath == "" || rec.VMX == "" || rec.State() != "serving" {
		return rec, fmt.Errorf("session %s serves no NFS export (%s)", id, rec.State())
	}
	if rec.ESXi != nil && !rec.ESXi.Removed {
		return rec, fmt.Errorf("session %s already has a VM on %s", id, rec.ESXi.Locator)
	}
	if o.RemoteHost == "" || net.ParseIP(o.RemoteHost) != nil && net.ParseIP(o.RemoteHost).IsUnspecified() {
		return rec, fmt.Errorf("the NFS server's address as the ESXi host reaches it is needed, not %q", o.RemoteHost)
	}
	t, err := resolve(ctx, c, o.Target)
	if err != nil {
		return rec, err
	}
	if o.Datastore == "" {
		o.Datastore = "holdfast-" + id
	}
	if o.VMName == "" {
		o.VMName = rec.VM + "-" + id
	}
	er := &instant.ESXiRecord{Locator: o.Target.String(), Host: t.host.Reference().Value, Datastore: o.Datastore,
		RemoteHost: o.RemoteHost}
	if rec, err = save(reg, id, er); err != nil {
		return rec, err
	}
	if err := attach(ctx, c, reg, id, er, t, rec, o); err != nil {
		if _, derr := Detach(ctx, c, reg, id); derr != nil {
			return rec, fmt.Errorf("%w; undoing it failed too: %w (holdfast instant-recovery stop %s retries)", err, derr, id)
		}
		return rec, err
	}
	return reg.Load(id)
}

// attach takes the steps, recording each before and after.
func attach(ctx context.Context, c *vsphere.Client, reg instant.Registry, id string, er *instant.ESXiRecord, t target,
	rec instant.Record, o Options) error {
	dss, err := t.host.ConfigManager().DatastoreSystem(ctx)
	if err != nil {
		return fmt.Errorf("host %s: %w", t.host.InventoryPath, err)
	}
	ds, err := dss.CreateNasDatastore(ctx, types.HostNasVolumeSpec{RemoteHost: o.RemoteHost, RemotePath: rec.NFSPath,
		LocalPath: o.Datastore, AccessMode: string(types.HostMountModeReadWrite), Type: string(types.HostFileSystemVolumeFileSystemTypeNFS)})
	if err != nil {
		return fmt.Errorf("mount %s:%s as datastore %s on %s: %w", o.RemoteHost, rec.NFSPath, o.Datastore, t.host.InventoryPath, err)
	}
	er.DatastoreRef = ds.Reference().Value
	er.VMName, er.VMPath = o.VMName, fmt.Sprintf("[%s] %s", o.Datastore, rec.VMX)
	if _, err := save(reg, id, er); err != nil {
		return err
	}
	folders, err := t.dc.Folders(ctx)
	if err != nil {
		return err
	}
	task, err := folders.VmFolder.RegisterVM(ctx, er.VMPath, o.VMName, false, t.pool, t.host)
	if err != nil {
		return fmt.Errorf("register %s: %w", er.VMPath, err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		return fmt.Errorf("register %s: %w", er.VMPath, err)
	}
	ref, ok := info.Result.(types.ManagedObjectReference)
	if !ok {
		return fmt.Errorf("register %s: no VM in the result", er.VMPath)
	}
	er.VMRef = ref.Value
	if _, err := save(reg, id, er); err != nil {
		return err
	}
	if !o.PowerOn {
		return nil
	}
	vm := object.NewVirtualMachine(c.Client, ref)
	if task, err = vm.PowerOn(ctx); err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fmt.Errorf("power on %s: %w", o.VMName, err)
	}
	return nil
}

// save records er in session id's record.
func save(reg instant.Registry, id string, er *instant.ESXiRecord) (instant.Record, error) {
	cp := *er
	return reg.Update(id, func(r *instant.Record) { r.ESXi = &cp })
}

// resolve finds the datacenter, host and resource pool of a target path.
func resolve(ctx context.Context, c *vsphere.Client, loc vsphere.Locator) (target, error) {
	var t target
	p := strings.TrimPrefix(loc.Path, "/")
	parts := strings.Split(p, "/")
	if len(parts) < 3 || parts[1] != "host" {
		return t, fmt.Errorf("%s: %w: want vsphere://USER@HOST/DATACENTER/host/CLUSTER-OR-HOST[/HOSTNAME]", loc, ErrTarget)
	}
	f := find.NewFinder(c.Client, true)
	dc, err := f.Datacenter(ctx, parts[0])
	if err != nil {
		return t, fmt.Errorf("%s: %w", loc, err)
	}
	t.dc = dc
	ref, err := object.NewSearchIndex(c.Client).FindByInventoryPath(ctx, p)
	if err != nil {
		return t, fmt.Errorf("%s: %w", loc, err)
	}
	if ref == nil {
		return t, fmt.Errorf("%s: %w: nothing there", loc, ErrTarget)
	}
	switch r := ref.Reference(); r.Type {
	case "HostSystem":
		t.host = object.NewHostSystem(c.Client, r)
	case "ComputeResource", "ClusterComputeResource":
		if t.host, err = firstHost(ctx, object.NewComputeResource(c.Client, r)); err != nil {
			return t, fmt.Errorf("%s: %w", loc, err)
		}
	default:
		return t, fmt.Errorf("%s: %w: a %s", loc, ErrTarget, r.Type)
	}
	t.host.InventoryPath = p
	if t.pool, err = t.host.ResourcePool(ctx); err != nil {
		return t, fmt.Errorf("%s: resource pool: %w", loc, err)
	}
	return t, nil
}
