package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/instant/esxi"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
	"github.com/spf13/pflag"
)

// esxiOptions are the flags of instant-recovery start that run the VM on
// an ESXi host.
type esxiOptions struct {
	target, nfsHost, datastore string
	powerOn                    bool
	vs                         vsphereFlags
}

func (o *esxiOptions) register(f *pflag.FlagSet) {
	f.StringVar(&o.target, "vsphere", "", "run the VM on ESXi: vsphere://USER@HOST/DC/host/CLUSTER-OR-HOST[/HOSTNAME] (mounts the NFS export there as a datastore and registers the VM; implies --nfs)")
	f.StringVar(&o.nfsHost, "nfs-host", "", "--vsphere: the address the ESXi host reaches the NFS services at (default --nfs-bind)")
	f.StringVar(&o.datastore, "datastore-name", "", "--vsphere: name of the NFS datastore (default holdfast-ID)")
	f.BoolVar(&o.powerOn, "power-on", false, "--vsphere: power the VM on once registered")
	o.vs.register(f)
}

// check validates the ESXi flags before the session starts: the target, the
// NFS address ESXi gets and the password (read now, so a missing one fails
// before anything is set up). It warns when ESXi cannot find the NFS
// services on the ports it uses (2049, and MOUNT through the portmapper on
// 111).
func (o *esxiOptions) check(a *app, io *instantOptions) (vsphere.Locator, vsphere.ConnectOptions, error) {
	loc, err := vsphere.ParseURL(o.target)
	if err != nil {
		return loc, vsphere.ConnectOptions{}, usageError{fmt.Errorf("--vsphere: %w", err)}
	}
	if parts := strings.Split(strings.Trim(loc.Path, "/"), "/"); len(parts) < 3 || parts[1] != "host" {
		return loc, vsphere.ConnectOptions{}, usageError{fmt.Errorf("--vsphere %s: want vsphere://USER@HOST/DC/host/CLUSTER-OR-HOST[/HOSTNAME]", loc)}
	}
	if o.nfsHost == "" {
		o.nfsHost = io.nfsBind
	}
	if ip := net.ParseIP(o.nfsHost); ip != nil && ip.IsUnspecified() {
		return loc, vsphere.ConnectOptions{}, usageError{fmt.Errorf("--nfs-bind %s: give --nfs-host, the address the ESXi host reaches this host at", o.nfsHost)}
	}
	co, err := o.vs.connectOptions(a)
	if err != nil {
		return loc, co, err
	}
	if ip := net.ParseIP(o.nfsHost); len(io.allow) == 0 && (ip == nil || !ip.IsLoopback()) {
		fmt.Fprintf(a.stderr, "warning: --allow is loopback only: the ESXi host cannot mount the export unless its VMkernel address is allowed (--allow ADDR)\n")
	}
	if pm, _, np, err := io.ports(); err == nil && (pm != 111 || np != 2049) {
		fmt.Fprintf(a.stderr, "warning: ESXi looks for NFS on port 2049 and for MOUNT through the portmapper on 111; --nfs-ports is %s\n", io.nfsPorts)
	}
	return loc, co, nil
}

// attachESXi runs a serving session's VM on the ESXi host (esxi.Attach);
// if that fails, the session is stopped and its redo data discarded.
func attachESXi(ctx context.Context, a *app, reg instant.Registry, rec instant.Record, o esxiOptions, vmName string,
	loc vsphere.Locator, co vsphere.ConnectOptions) (instant.Record, error) {
	c, err := vsphere.Connect(ctx, loc, co)
	if err == nil {
		defer c.Logout(context.WithoutCancel(ctx))
		rec, err = esxi.Attach(ctx, c, reg, rec.ID, esxi.Options{Target: loc, RemoteHost: o.nfsHost, Datastore: o.datastore,
			VMName: vmName, PowerOn: o.powerOn})
	}
	if err == nil {
		return rec, nil
	}
	bg := context.WithoutCancel(ctx)
	stopped, serr := reg.Stop(bg, rec.ID, instant.StopOptions{Force: true})
	if serr != nil {
		return rec, fmt.Errorf("%w; stopping session %s failed too: %w", err, rec.ID, serr)
	}
	if stopped.ESXi != nil && !stopped.ESXi.Removed { // the record says what is left on the host
		return rec, fmt.Errorf("session %s stopped: %w", rec.ID, err)
	}
	_, _ = reg.Discard(bg, stopped)
	return rec, fmt.Errorf("session %s stopped and discarded: %w", rec.ID, err)
}

// detachESXi undoes what a session set up on ESXi (esxi.Detach), connecting
// to the endpoint its record names with vs's password and trust.
func detachESXi(ctx context.Context, a *app, reg instant.Registry, rec instant.Record, vs vsphereFlags) (instant.Record, error) {
	if rec.ESXi == nil || rec.ESXi.Removed {
		return rec, nil
	}
	c, err := connectRecorded(ctx, a, rec, vs)
	if err != nil {
		return rec, err
	}
	defer c.Logout(context.WithoutCancel(ctx))
	return esxi.Detach(ctx, c, reg, rec.ID)
}

// migrateESXi relocates a session's VM onto datastore ds, then stops the
// session and, unless keep, discards its redo data.
func migrateESXi(ctx context.Context, a *app, reg instant.Registry, rec instant.Record, ds string, vs vsphereFlags, keep bool) error {
	if rec.ESXi == nil {
		return usageError{fmt.Errorf("session %s has no VM on ESXi: migrate it with --to", rec.ID)}
	}
	c, err := connectRecorded(ctx, a, rec, vs)
	if err != nil {
		return err
	}
	defer c.Logout(context.WithoutCancel(ctx))
	start := a.clock.Now()
	if rec, err = esxi.Migrate(ctx, c, reg, rec.ID, ds); err != nil {
		if errors.Is(err, esxi.ErrNotAttached) {
			return usageError{err}
		}
		return err
	}
	took := a.clock.Since(start)
	if rec, err = reg.Stop(ctx, rec.ID, instant.StopOptions{Force: true}); err != nil {
		return fmt.Errorf("the VM runs from datastore %s; the session serves on: %w", ds, err)
	}
	ended := "session ended"
	if !keep {
		d, err := reg.Discard(ctx, rec)
		if err != nil {
			return err
		}
		ended += "; " + a.discarded(rec, d)
	}
	_, err = fmt.Fprintf(a.stdout, "migrated session %s: VM %s relocated to datastore %s in %s; datastore %s removed; %s\n",
		rec.ID, rec.ESXi.VMName, ds, took.Round(1e6), rec.ESXi.Datastore, ended)
	return err
}

func connectRecorded(ctx context.Context, a *app, rec instant.Record, vs vsphereFlags) (*vsphere.Client, error) {
	loc, err := vsphere.ParseURL(rec.ESXi.Locator)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", rec.ID, err)
	}
	co, err := vs.connectOptions(a)
	if err != nil {
		return nil, fmt.Errorf("session %s has a VM on %s: %w", rec.ID, loc, err)
	}
	return vsphere.Connect(ctx, loc, co)
}

// printESXi says where a session's VM runs on ESXi.
func (a *app) printESXi(rec instant.Record) {
	er := rec.ESXi
	if er == nil {
		return
	}
	switch {
	case er.MigratedTo != "":
		fmt.Fprintf(a.stdout, "ESXi: VM %s migrated to datastore %s\n", er.VMName, er.MigratedTo)
	case er.Removed:
		fmt.Fprintf(a.stdout, "ESXi: VM %s unregistered, datastore %s removed\n", er.VMName, er.Datastore)
	default:
		fmt.Fprintf(a.stdout, "ESXi: VM %s (%s) registered from %s on %s; datastore %s = %s:%s\n", er.VMName, er.VMRef, er.VMPath,
			er.Locator, er.Datastore, er.RemoteHost, rec.NFSPath)
	}
}
