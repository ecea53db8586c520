package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

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
	var m repo.Manifest
	if err := json.Unmarshal(spec.Previous, &m); err != nil {
		return res, fmt.Errorf("point from the server: %w", err)
	}
	if spec.Mount.Scan != nil {
		return p.scanMount(ctx, at, &m)
	}
	if p.o.StateDir == "" {
		return res, fmt.Errorf("this proxy has no state directory for Instant VM Recovery redo data")
	}
	if spec.Mount.Publish {
		return p.publishMount(ctx, at, &m)
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
	rctx, stopReports := context.WithCancel(ctx)
	defer stopReports()
	o := instant.Options{ID: id, Store: c, Point: &m, RepoName: spec.Repository.Name, RedoDir: redo,
		NBD: spec.Mount.NBD, Allow: allow, Registry: reg, Logger: p.log,
		Holder: c, ReleaseHold: true, // the session ends when the server stops it
		Ready: func(rec instant.Record) {
			info := mountInfo{Record: rec, NBDCA: string(caPEM), Clients: []instant.Client{}}
			info.store(at)
			go p.reportClients(rctx, reg, info, at)
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

// mountInfo is what a mount reports it serves: the session record, the
// CA certificate its NBD exports present a certificate of (public: the
// requester's NBD client trusts it, as ca-cert.pem) and the clients of the
// exports, which the server names when it refuses to stop a session in use.
type mountInfo struct {
	instant.Record
	NBDCA   string           `json:"nbd_ca,omitempty"`
	Clients []instant.Client `json:"clients"`
	InUse   string           `json:"in_use,omitempty"` // instant.DescribeClients, "" without clients
}

func (m mountInfo) store(at *attempt) {
	b, _ := json.Marshal(m)
	at.info.Store(&b)
}

// reportClients refreshes the clients in the mount's report as often as
// the attempt reports progress, until ctx ends. An NFS client's last
// request time is left out: it would change the report at every request.
func (p *Proxy) reportClients(ctx context.Context, reg instant.Registry, info mountInfo, at *attempt) {
	t := time.NewTicker(p.o.ProgressInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cs, err := reg.Clients(ctx, info.ID)
		if err != nil {
			p.log.Warn("instant recovery: the session's clients", "session", info.ID, "err", err)
			continue
		}
		info.Clients, info.InUse = []instant.Client{}, ""
		for _, c := range cs {
			c.Last = time.Time{}
			info.Clients = append(info.Clients, c)
		}
		if len(cs) > 0 {
			info.InUse = instant.DescribeClients(info.Clients)
		}
		info.store(at)
	}
}
