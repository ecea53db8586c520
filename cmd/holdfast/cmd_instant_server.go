package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
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

// runServerInstantStart asks the server to serve a point from a proxy and
// waits until the exports answer.
func runServerInstantStart(ctx context.Context, a *app, co *clientOptions, o instantOptions, point string) error {
	cl, err := a.client(co)
	if err != nil {
		return err
	}
	pm, mnt, np, err := o.ports()
	if err != nil {
		return err
	}
	req := map[string]any{"point": point, "nbd": o.nbd, "nfs": o.nfs, "nfs_bind": o.nfsBind,
		"nfs_ports": []int{pm, mnt, np}, "allow": o.allow}
	var se sessionJSON
	if err := cl.call(ctx, "POST", "/api/v1/instant-recoveries", "start instant recoveries", req, &se); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var cur sessionJSON
		if err := cl.call(ctx, "GET", "/api/v1/sessions/"+strconv.FormatInt(se.ID, 10), "read sessions", nil, &cur); err != nil {
			return err
		}
		var res mountResult
		_ = json.Unmarshal(cur.Result, &res)
		switch {
		case len(res.Serving) > 0 && cur.State == "running":
			if o.asJSON {
				return printJSON(a.stdout, cur.Result)
			}
			var rec struct {
				Disks []struct {
					Index int    `json:"index"`
					NBD   string `json:"nbd_url"`
					NFS   string `json:"nfs_url"`
				} `json:"disks"`
			}
			_ = json.Unmarshal(res.Serving, &rec)
			fmt.Fprintf(a.stdout, "session %d: %s of %s served by %s (stop with: holdfast instant-recovery stop %d)\n",
				se.ID, res.VM, res.Point, res.Proxy, se.ID)
			for _, d := range rec.Disks {
				fmt.Fprintf(a.stdout, "  disk %d: %s %s\n", d.Index, orDash(d.NBD), d.NFS)
			}
			return nil
		case cur.State != "running" && cur.State != "queued":
			return sessionFailed{id: se.ID, state: cur.State, msg: res.Error}
		case time.Now().After(deadline):
			return fmt.Errorf("session %d: no mount server served the point within 2 minutes (see holdfast session show %d)", se.ID, se.ID)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// runServerInstantStop stops a server-run session (ID = session number).
func runServerInstantStop(ctx context.Context, a *app, co *clientOptions, id string) error {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil || n <= 0 {
		return usageError{errors.New("through the server, ID is the session number that start printed")}
	}
	cl, err := a.client(co)
	if err != nil {
		return err
	}
	if err := cl.call(ctx, "POST", "/api/v1/sessions/"+id+"/cancel", "stop sessions", nil, nil); err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "session %d stopped; redo data kept on the mount server\n", n)
	return err
}

// runServerInstantList lists the server's Instant VM Recovery sessions
// that are serving.
func runServerInstantList(ctx context.Context, a *app, co *clientOptions, asJSON bool) error {
	cl, err := a.client(co)
	if err != nil {
		return err
	}
	var sessions []sessionJSON
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
		var rec struct {
			Disks []struct {
				NBD string `json:"nbd_url"`
				NFS string `json:"nfs_url"`
			} `json:"disks"`
		}
		_ = json.Unmarshal(res.Serving, &rec)
		state, urls := "queued", "-"
		if len(res.Serving) > 0 {
			state = "serving"
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
			results = append(results, se.Result)
		}
		rows = append(rows, []string{strconv.FormatInt(se.ID, 10), orDash(res.VM), orDash(res.Point), state, orDash(res.Proxy), urls})
	}
	if asJSON {
		if results == nil {
			results = []json.RawMessage{}
		}
		return printJSON(a.stdout, mustJSON(results))
	}
	return table(a.stdout, []string{"SESSION", "VM", "POINT", "STATE", "PROXY", "EXPORTS"}, rows)
}
