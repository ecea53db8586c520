package main

import (
	"context"
	"errors"
	"maps"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/qemu"
	"github.com/holdfast-backup/holdfast/internal/source/vsphere"
)

// sourceSet is what one backup reads: plain sources (files, NBD exports) or
// one QEMU or vSphere VM whose disks come from a prepared snapshot session.
type sourceSet struct {
	disks   []source.Disk
	notes   map[string]string
	config  *repo.VMConfig
	session interface {
		Release(ctx context.Context, committed bool) error
	}
}

// release closes the sources; for a VM it removes the snapshot, telling
// the session whether the restore point was committed.
func (s *sourceSet) release(ctx context.Context, committed bool) error {
	if s.session != nil {
		return s.session.Release(ctx, committed)
	}
	closeDisks(s.disks)
	return nil
}

type qemuFlags struct {
	guestAgent   string
	guestTimeout time.Duration
	transport    string
	nbdTLSDir    string
}

func openSourceSet(ctx context.Context, a *app, r *repo.Repository, vm string, args []string, o backupOptions) (*sourceSet, error) {
	specs, err := parseSources(args)
	if err != nil {
		return nil, err
	}
	vms := 0
	for _, s := range specs {
		if s.WholeVM() {
			vms++
		}
	}
	if vms > 0 && len(args) != 1 {
		return nil, usageError{errors.New("a qemu://, libvirt:// or vsphere:// source is a whole VM: give it as the only SOURCE")}
	}
	prev, err := r.ResolvePoint(ctx, vm+":latest")
	if err != nil && !errors.Is(err, repo.ErrPointNotFound) {
		return nil, err
	}
	if vms == 0 {
		disks, err := openSources(ctx, specs, o.src, recordedFormats(prev, specs))
		return &sourceSet{disks: disks}, err
	}
	var prevIDs []string
	if prev != nil {
		for _, d := range prev.Disks {
			prevIDs = append(prevIDs, d.ChangeID)
		}
	}
	switch specs[0].Kind {
	case source.KindVSphere:
		return openVSphere(ctx, a, r, specs[0], prevIDs, o)
	case source.KindLibvirt:
		return openLibvirt(ctx, a, r, specs[0], prevIDs, o)
	}
	sock := specs[0].Path
	qo := qemu.Options{QMP: sock, GuestAgent: o.qemu.guestAgent, Transport: source.Transport(o.qemu.transport),
		Tag: r.Config().ID[:8], PreviousChangeIDs: prevIDs, TLSDir: o.qemu.nbdTLSDir, FreezeTimeout: o.qemu.guestTimeout, Logger: a.logger()}
	if o.qemu.nbdTLSDir != "" {
		tc, err := o.src.tlsConfig()
		if err != nil {
			return nil, err
		}
		qo.ClientTLS = tc
	}
	sess, err := qemu.Prepare(ctx, qo)
	if err != nil {
		return nil, err
	}
	notes := map[string]string{"guest_quiesce": sess.Guest, "transport": string(sess.Transport), "transport_choice": sess.TransportNote}
	for k, v := range sess.Config {
		notes[k] = v
	}
	if len(sess.Cleaned) > 0 {
		notes["cleaned_leftovers"] = strings.Join(sess.Cleaned, ", ")
	}
	return &sourceSet{disks: sess.Disks, notes: notes, session: sess}, nil
}

// openVSphere snapshots a vSphere VM and opens its disks.
func openVSphere(ctx context.Context, a *app, r *repo.Repository, spec source.Spec, prevIDs []string, o backupOptions) (*sourceSet, error) {
	loc, err := vsphere.FromSpec(spec)
	if err != nil {
		return nil, usageError{err}
	}
	co, err := o.vsphere.connectOptions(a)
	if err != nil {
		return nil, err
	}
	paths, err := parseDatastorePaths(o.datastorePaths)
	if err != nil {
		return nil, err
	}
	sess, err := vsphere.Prepare(ctx, vsphere.Options{Locator: loc, Connect: co, Transport: source.Transport(o.qemu.transport),
		Transports: vsphere.Available(paths, o.proxyVM, 0), Quiesce: o.quiesce, Tag: r.Config().ID[:8], PreviousChangeIDs: prevIDs, Logger: a.logger(), Clock: a.clock})
	if err != nil {
		return nil, err
	}
	notes := maps.Clone(sess.Notes)
	if len(sess.Warnings) > 0 {
		notes["skipped_disks"] = strings.Join(sess.Warnings, "; ")
	}
	return &sourceSet{disks: sess.Disks, notes: notes, config: sess.Config, session: sess}, nil
}
