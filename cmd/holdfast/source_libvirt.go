package main

import (
	"context"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/libvirt"
)

// openLibvirt starts a libvirt pull-mode backup of a domain and opens its
// disks.
func openLibvirt(ctx context.Context, a *app, r *repo.Repository, spec source.Spec, prevIDs []string, o backupOptions) (*sourceSet, error) {
	loc, err := libvirt.FromSpec(spec, o.libvirtURI)
	if err != nil {
		return nil, usageError{err}
	}
	sess, err := libvirt.Prepare(ctx, libvirt.Options{Locator: loc, Tag: r.Config().ID[:8], PreviousChangeIDs: prevIDs, Logger: a.logger(),
		RunDir: o.libvirtRunDir, Quiesce: o.quiesce})
	if err != nil {
		return nil, err
	}
	return &sourceSet{disks: sess.Disks, notes: sess.Notes, config: sess.Config, session: sess}, nil
}
