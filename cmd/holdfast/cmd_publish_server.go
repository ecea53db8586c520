package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/holdfast-backup/holdfast/internal/publish"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// runServerPublish asks the server to publish a point on a mount server
// (a proxy) and waits until its filesystems are mounted there.
func runServerPublish(ctx context.Context, a *app, co *clientOptions, o publishOptions, point string) error {
	if o.mountDir != "" {
		if err := absFlag("--mount-dir", o.mountDir); err != nil {
			return err
		}
	}
	cl, err := a.client(co)
	if err != nil {
		return err
	}
	var se apitypes.Mount
	req := taskproto.PublishRequest{Point: point, MountDir: o.mountDir}
	if err := cl.call(ctx, "POST", "/api/v1/publications", "publish points", req, &se); err != nil {
		return err
	}
	id := publish.ServerID(se.ID)
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
			s := &publish.Session{}
			if err := json.Unmarshal(res.Serving, s); err != nil {
				return fmt.Errorf("session %s: the mount server's report: %w", id, err)
			}
			if !o.asJSON {
				fmt.Fprintf(a.stdout, "on mount server %s (unpublish with: holdfast unpublish %s)\n", res.Proxy, id)
				return a.printPublished(s, false)
			}
			out := map[string]any{"session": se.ID, "proxy": res.Proxy}
			_ = json.Unmarshal(res.Serving, &out) // the session's own fields: id, mount_dir, filesystems …
			return printJSON(a.stdout, mustJSON(out))
		case cur.State != "running" && cur.State != "queued":
			return sessionFailed{id: se.ID, state: cur.State, msg: res.Error}
		case a.clock.Now().After(deadline):
			return fmt.Errorf("session %s: no mount server published the point within 2 minutes (see holdfast session show %d)", id, se.ID)
		}
		if err := a.clock.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// runServerUnpublish stops a server-run publish session (ID: pub- and
// the session number in eight digits, or the bare number): the mount
// server undoes everything.
func runServerUnpublish(ctx context.Context, a *app, co *clientOptions, id string) error {
	n, ok := publish.ParseServerID(id)
	if !ok {
		return usageError{fmt.Errorf("%q: through the server, ID is the one publish printed (pub- and the session number, e.g. %s)", id, publish.ServerID(7))}
	}
	if err := cancelServerSession(ctx, a, co, n, "stop sessions", false); err != nil {
		return err
	}
	_, err := fmt.Fprintf(a.stdout, "unpublished %s\n", publish.ServerID(n))
	return err
}
