package proxy

import (
	"context"

	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/source/libvirt"
)

// backupLibvirt backs up every disk of a libvirt domain in one attempt:
// the same session as `holdfast backup libvirt:///DOMAIN` (a pull-mode
// backup job and checkpoint on a running domain, its disk files on a shut
// off one; see internal/source/libvirt), run on this proxy through the
// connection URI of the domain's source (spec.LibvirtURI, "" the local
// qemu:///system), so a proxy on the hypervisor host reads the exports
// over libvirt's local unix socket. The previous point's checkpoint is the
// base of an incremental, as locally.
func (p *Proxy) backupLibvirt(ctx context.Context, at *attempt, src source.Spec) (taskproto.Result, error) {
	loc, err := libvirt.FromSpec(src, at.spec.LibvirtURI)
	if err != nil {
		return taskproto.Result{}, err
	}
	return p.backupWholeVM(ctx, at, func(ctx context.Context, tag string, prevIDs []string) (*snapshot, error) {
		sess, err := libvirt.Prepare(ctx, libvirt.Options{Locator: loc, Tag: tag, PreviousChangeIDs: prevIDs, Logger: p.log})
		if err != nil {
			return nil, err
		}
		return &snapshot{disks: sess.Disks, notes: sess.Notes, config: sess.Config, release: sess.Release}, nil
	})
}
