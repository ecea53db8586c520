package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/holdfast-backup/holdfast/internal/allowlist"
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
	allow, err := allowlist.Parse(spec.Mount.Allow)
	if err != nil {
		return res, err
	}
	if len(allow) == 0 {
		return res, fmt.Errorf("the server sent no allow list for the exports")
	}
	c, err := p.repository(ctx, spec)
	if err != nil {
		return res, err
	}
	defer c.Close()
	at.client.Store(c)
	dir := filepath.Join(p.o.StateDir, "instant")
	// The session's ID is the one the server shows (instant.ServerID).
	id := instant.ServerID(spec.SessionID)
	var caPEM []byte // the CA of the NBD exports' certificate, for the requester
	reg := instant.RegistryIn(dir)
	reg.Clock = p.o.Clock
	redo, _, err := reg.SessionDir(dir, id)
	if err != nil {
		return res, err
	}
	o := instant.Options{ID: id, Store: c, Point: &m, RepoName: spec.Repository.Name, RedoDir: redo,
		NBD: spec.Mount.NBD, Allow: allow, Registry: reg, Logger: p.log,
		Holder: c, ReleaseHold: true, // the session ends when the server stops it
		Ready: func(rec instant.Record) {
			b, _ := json.Marshal(mountInfo{Record: rec, NBDCA: string(caPEM)})
			at.info.Store(&b)
		}}
	if spec.Mount.NBD != "" {
		// Through the server the NBD exports are TLS-only, opened by the
		// requester's session certificate.
		if spec.Mount.NBDClientCA == "" {
			return res, fmt.Errorf("the server sent no client CA for the NBD exports (TLS is required)")
		}
		if o.NBDTLS, caPEM, err = mountTLS([]byte(spec.Mount.NBDClientCA), spec.Mount.NBD, nil); err != nil {
			return res, err
		}
	}
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

// mountInfo is what a mount reports it serves: the session record and the
// CA certificate its NBD exports present a certificate of (public: the
// requester's NBD client trusts it, as ca-cert.pem).
type mountInfo struct {
	instant.Record
	NBDCA string `json:"nbd_ca,omitempty"`
}
