package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/holdfast-backup/holdfast/internal/instant"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// mountResult is the result of an Instant VM Recovery session run by the
// server on a mount server (proxy).
type mountResult struct {
	Status  string          `json:"status"`
	Session int64           `json:"session"`
	VM      string          `json:"vm"`
	Point   string          `json:"point"`
	Proxy   string          `json:"proxy"`
	Serving json.RawMessage `json:"serving"`
	Error   string          `json:"error"`
}

// mountServing is what a mount server reports it serves, and the clients
// of the exports (as of its last progress report).
type mountServing struct {
	Disks []struct {
		Index int    `json:"index"`
		NBD   string `json:"nbd_url"`
		NFS   string `json:"nfs_url"`
	} `json:"disks"`
	NBDCA   string           `json:"nbd_ca"`
	Clients []instant.Client `json:"clients"`
}

// runServerInstantStart asks the server to serve a point from a proxy and
// waits until the exports answer. The NBD client credentials go to
// --nbd-creds for QEMU and nbd tools.
func runServerInstantStart(ctx context.Context, a *app, co *clientOptions, stateDir string, o instantOptions, point string) error {
	cl, err := a.client(co)
	if err != nil {
		return err
	}
	pm, mnt, np, err := o.ports()
	if err != nil {
		return err
	}
	var creds nbdCredsDir
	if o.nbd != "" {
		if creds, err = a.prepareNBDCreds(stateDir, o.nbdCreds); err != nil {
			return err
		}
	}
	req := taskproto.MountRequest{Point: point, NFSInsecure: o.nfsInsecure, Mount: taskproto.Mount{
		NBD: o.nbd, NFS: o.nfs, NFSBind: o.nfsBind, NFSPorts: [3]int{pm, mnt, np}, Allow: o.allow}}
	var se apitypes.Mount
	if err := cl.call(ctx, "POST", "/api/v1/instant-recoveries", "start instant recoveries", req, &se); err != nil {
		return err
	}
	if se.NBDTLS != nil {
		if creds.dir == "" {
			creds.dir = filepath.Join(creds.parent, "server-session-"+strconv.FormatInt(se.ID, 10))
		}
		if err := creds.writeClient([]byte(se.NBDTLS.ClientCert), []byte(se.NBDTLS.ClientKey)); err != nil {
			return fmt.Errorf("session %s: %w (stop it with: holdfast instant-recovery stop %[1]s)", instant.ServerID(se.ID), err)
		}
	}
	deadline := a.clock.Now().Add(2 * time.Minute)
	for {
		var cur apitypes.Session
		if err := cl.call(ctx, "GET", "/api/v1/sessions/"+strconv.FormatInt(se.ID, 10), "read sessions", nil, &cur); err != nil {
			return err
		}
		var res mountResult
		_ = json.Unmarshal(cur.Result, &res)
		switch {
		case len(res.Serving) > 0 && cur.State == "running":
			var rec mountServing
			_ = json.Unmarshal(res.Serving, &rec)
			if se.NBDTLS != nil {
				if err := creds.writeCA([]byte(rec.NBDCA), []byte(se.NBDTLS.ClientCA)); err != nil {
					return fmt.Errorf("session %s: %w", instant.ServerID(se.ID), err)
				}
			}
			return printServerInstant(a, o.asJSON, se.ID, res, cur.Result, rec, creds.dir)
		case cur.State != "running" && cur.State != "queued":
			return sessionFailed{id: se.ID, state: cur.State, msg: res.Error}
		case a.clock.Now().After(deadline):
			return fmt.Errorf("session %s: no mount server served the point within 2 minutes (see holdfast session show %d)", instant.ServerID(se.ID), se.ID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// printServerInstant prints a server-run session that serves.
func printServerInstant(a *app, asJSON bool, id int64, res mountResult, raw json.RawMessage, rec mountServing, credsDir string) error {
	if asJSON {
		var out map[string]json.RawMessage
		if err := json.Unmarshal(raw, &out); err != nil {
			return err
		}
		out["id"] = mustJSON(instant.ServerID(id))
		if credsDir != "" {
			out["nbd_creds"] = mustJSON(credsDir)
		}
		return printJSON(a.stdout, mustJSON(out))
	}
	fmt.Fprintf(a.stdout, "session %s: %s of %s served by %s (stop with: holdfast instant-recovery stop %[1]s)\n",
		instant.ServerID(id), res.VM, res.Point, res.Proxy)
	for _, d := range rec.Disks {
		fmt.Fprintf(a.stdout, "  disk %d: %s %s\n", d.Index, orDash(d.NBD), d.NFS)
	}
	if credsDir != "" {
		fmt.Fprintf(a.stdout, "NBD client credentials (TLS): %s\n  QEMU: --object tls-creds-x509,id=tls0,endpoint=client,dir=%s "+
			"and tls-creds=tls0 on the nbd drive; nbdcopy/nbdinfo: URL?tls-certificates=%s\n", credsDir, credsDir, credsDir)
	}
	return nil
}

// runServerInstantStop stops a server-run session (ID: ir-NNNNNNNN, the
// session number in eight digits, or the bare number); the server refuses
// (409) while the mount server reports clients, unless force.
func runServerInstantStop(ctx context.Context, a *app, co *clientOptions, id string, force bool) error {
	n, err := parseServerInstantID(id)
	if err != nil {
		return err
	}
	if err := cancelServerSession(ctx, a, co, n, "stop sessions", force); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "session %s stopped; redo data kept on the mount server\n", instant.ServerID(n))
	return err
}

// cancelServerSession cancels session n on the server; an Instant VM
// Recovery session whose exports have clients is refused (409 "in_use",
// instant.ErrInUse here) unless force.
func cancelServerSession(ctx context.Context, a *app, co *clientOptions, n int64, what string, force bool) error {
	cl, err := a.client(co)
	if err != nil {
		return err
	}
	path := "/api/v1/sessions/" + strconv.FormatInt(n, 10) + "/cancel"
	if force {
		path += "?force=true"
	}
	err = cl.call(ctx, "POST", path, what, nil, nil)
	var ae *apitypes.Error
	if errors.As(err, &ae) && ae.Code == "in_use" {
		return serverInUse{err}
	}
	return err
}

// serverInUse is the server's refusal to stop a session in use: it exits
// as a local one does (instant.ErrInUse).
type serverInUse struct{ error }

func (e serverInUse) Unwrap() []error { return []error{e.error, instant.ErrInUse} }

// runServerInstantList lists the server's Instant VM Recovery sessions
// that are serving.
func runServerInstantList(ctx context.Context, a *app, co *clientOptions, asJSON bool) error {
	cl, err := a.client(co)
	if err != nil {
		return err
	}
	var sessions []apitypes.Session
	if err := cl.call(ctx, "GET", "/api/v1/sessions?state=running&limit=1000", "list sessions", nil, &sessions); err != nil {
		return err
	}
	var results []json.RawMessage
	var rows [][]string
	for _, se := range sessions {
		if se.Kind != "instant-recovery" {
			continue
		}
		var res mountResult
		_ = json.Unmarshal(se.Result, &res)
		var rec mountServing
		_ = json.Unmarshal(res.Serving, &rec)
		state, urls, clients := "queued", "-", "-"
		if len(res.Serving) > 0 {
			state, clients = "serving", strconv.Itoa(len(rec.Clients))
			urls = ""
			for i, d := range rec.Disks {
				if i > 0 {
					urls += " "
				}
				urls += orDash(d.NBD)
				if d.NFS != "" {
					urls += " " + d.NFS
				}
			}
		}
		if len(se.Result) > 0 {
			var out map[string]json.RawMessage
			if err := json.Unmarshal(se.Result, &out); err == nil {
				out["id"] = mustJSON(instant.ServerID(se.ID))
				results = append(results, mustJSON(out))
			}
		}
		rows = append(rows, []string{instant.ServerID(se.ID), orDash(res.VM), orDash(res.Point), state, orDash(res.Proxy), clients, urls})
	}
	if asJSON {
		if results == nil {
			results = []json.RawMessage{}
		}
		return printJSON(a.stdout, mustJSON(results))
	}
	return table(a.stdout, []string{"ID", "VM", "POINT", "STATE", "PROXY", "CLIENTS", "EXPORTS"}, rows)
}

// runServerInstantShow shows a server-run session: its exports and the
// clients its mount server last reported.
func runServerInstantShow(ctx context.Context, a *app, co *clientOptions, id string, asJSON bool) error {
	n, err := parseServerInstantID(id)
	if err != nil {
		return err
	}
	cl, err := a.client(co)
	if err != nil {
		return err
	}
	var se apitypes.Session
	if err := cl.call(ctx, "GET", "/api/v1/sessions/"+strconv.FormatInt(n, 10), "read sessions", nil, &se); err != nil {
		return err
	}
	if se.Kind != "instant-recovery" {
		return fmt.Errorf("session %d is a %s session, not an instant recovery", n, se.Kind)
	}
	if asJSON {
		return printJSON(a.stdout, se.Result)
	}
	var res mountResult
	_ = json.Unmarshal(se.Result, &res)
	var rec mountServing
	_ = json.Unmarshal(res.Serving, &rec)
	fmt.Fprintf(a.stdout, "session %s: %s of %s (%s) served by %s\n", instant.ServerID(n), orDash(res.VM), orDash(res.Point), se.State, orDash(res.Proxy))
	for _, d := range rec.Disks {
		fmt.Fprintf(a.stdout, "  disk %d: %s %s\n", d.Index, orDash(d.NBD), d.NFS)
	}
	printClients(a, rec.Clients, "")
	return nil
}

// printClients prints the clients of a session's exports (or why they
// are not known).
func printClients(a *app, clients []instant.Client, unknown string) {
	switch {
	case unknown != "":
		fmt.Fprintf(a.stdout, "clients: unknown (%s)\n", unknown)
	case len(clients) == 0:
		fmt.Fprintln(a.stdout, "clients: none")
	default:
		fmt.Fprintln(a.stdout, "clients:")
		for _, c := range clients {
			fmt.Fprintf(a.stdout, "  %s\n", c)
		}
	}
}

// parseServerInstantID reads a server-run session's ID as start printed it
// (ir- and the session number) or the bare session number.
func parseServerInstantID(id string) (int64, error) {
	n, ok := instant.ParseServerID(id)
	if !ok {
		return 0, usageError{fmt.Errorf("%q: through the server, ID is the one start printed (ir- and the session number, e.g. %s)", id, instant.ServerID(7))}
	}
	return n, nil
}
