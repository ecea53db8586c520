package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"path/filepath"

	"github.com/holdfast-backup/holdfast/internal/export/nfs"
	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// mount serves a point for Instant VM Recovery — this proxy is the mount
// server — until the server stops the session (the attempt's context ends
// when a progress report is answered "stale"). Chunks come from the
// repository agent through the data mover; the VM's writes go to redo data
// under the proxy's state directory, which stays after the stop.
func (p *Proxy) mount(ctx context.Context, at *attempt) (taskproto.Result, error) {
	spec := at.spec
	var res taskproto.Result
	if p.o.StateDir == "" {
		return res, fmt.Errorf("this proxy has no state directory for Instant VM Recovery redo data")
	}
	var m repo.Manifest
	if err := json.Unmarshal(spec.Previous, &m); err != nil {
		return res, fmt.Errorf("point from the server: %w", err)
	}
	var allow []netip.Prefix
	for _, s := range spec.Mount.Allow {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			return res, fmt.Errorf("allow %q: %w", s, err)
		}
		allow = append(allow, pf)
	}
	c, err := p.repository(ctx, spec)
	if err != nil {
		return res, err
	}
	defer c.Close()
	at.client.Store(c)
	dir := filepath.Join(p.o.StateDir, "instant")
	id := fmt.Sprintf("ir-%08x", uint32(spec.TaskID))
	o := instant.Options{ID: id, Store: c, Point: &m, RepoName: spec.Repository.Name, RedoDir: filepath.Join(dir, id),
		NBD: spec.Mount.NBD, Allow: allow, Registry: instant.Registry{Dir: filepath.Join(dir, "sessions")}, Logger: p.log,
		Holder: c, ReleaseHold: true, // the session ends when the server stops it
		Ready: func(rec instant.Record) {
			b, _ := json.Marshal(rec)
			at.info.Store(&b)
		}}
	if spec.Mount.NFS {
		pm := spec.Mount.NFSPorts
		ls, err := nfs.Listen(spec.Mount.NFSBind, pm[0], pm[1], pm[2])
		if err != nil {
			return res, fmt.Errorf("NFS services: %w", err)
		}
		o.NFS, o.NFSHost = &ls, spec.Mount.NFSBind
	}
	if err := instant.Serve(ctx, o); err != nil {
		return res, err
	}
	return res, ctx.Err() // stopped by the server
}
