package proxy

import (
	"context"
	"errors"

	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
)

// VSphereOptions say how this proxy reads vSphere disks besides the
// network (nbd, always offered).
type VSphereOptions struct {
	// DatastorePaths map datastore names to the directories where this
	// proxy sees them (an NFS mount, a SAN LUN's file system): direct
	// storage access.
	DatastorePaths map[string]string
	// VMName is the inventory name of the VM this proxy runs in: hot-add
	// attaches snapshot disks to it.
	VMName string
}

// Transports names the transports the options offer (vsphere.Available
// builds them), in the order auto tries them: direct, hotadd, nbd.
func (o VSphereOptions) Transports() []source.Transport {
	var out []source.Transport
	for _, t := range vsphere.Available(o.DatastorePaths, o.VMName, 0) {
		out = append(out, t.Name())
	}
	return out
}

// backupVSphere backs up every disk of a vSphere VM in one attempt, as
// backupVM does for QEMU: the snapshot, read through the transport the
// task asks for (auto: direct → hotadd → nbd), with the login the server
// sent in the task.
func (p *Proxy) backupVSphere(ctx context.Context, at *attempt, src source.Spec) (taskproto.Result, error) {
	spec := at.spec
	if spec.VSphere == nil {
		return taskproto.Result{}, errors.New("the server sent no vSphere login with the task (is the VM's vSphere source added?)")
	}
	loc, err := vsphere.FromSpec(src)
	if err != nil {
		return taskproto.Result{}, err
	}
	opts, err := spec.VSphere.ConnectOptions()
	if err != nil {
		return taskproto.Result{}, err
	}
	return p.backupWholeVM(ctx, at, func(ctx context.Context, tag string, prevIDs []string) (*snapshot, error) {
		return p.vsphereSnapshot(ctx, vsphere.Options{Locator: loc, Connect: opts, Transport: source.Transport(spec.Transport),
			Tag: tag, PreviousChangeIDs: prevIDs})
	})
}

// vsphereSnapshot is the one call into the vSphere session
// (internal/source/vsphere): o gets this proxy's transports.
func (p *Proxy) vsphereSnapshot(ctx context.Context, o vsphere.Options) (*snapshot, error) {
	o.Transports = vsphere.Available(p.o.VSphere.DatastorePaths, p.o.VSphere.VMName, vsphere.DefaultConnections)
	o.Connections, o.Logger = vsphere.DefaultConnections, p.log
	sess, err := vsphere.Prepare(ctx, o)
	if err != nil {
		return nil, err
	}
	return &snapshot{disks: sess.Disks, notes: sess.Notes, config: sess.Config, warnings: sess.Warnings, release: sess.Release}, nil
}
