package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// sessionResult is the result document the server stores with an ended
// session (see internal/server/orchestrator.Result).
type sessionResult struct {
	Status  string  `json:"status"`
	Session int64   `json:"session"`
	Error   string  `json:"error"`
	Dur     float64 `json:"duration_seconds"`
	// Warnings are the session's own (a selection that picked no VM).
	Warnings []string `json:"warnings"`
	VMs      []struct {
		Name     string   `json:"name"`
		Status   string   `json:"status"`
		Point    string   `json:"point"`
		Errors   []string `json:"errors"`
		Warnings []string `json:"warnings"`
		Scan     *struct {
			Summary string `json:"summary"`
		} `json:"scan"`
		Disks []struct {
			Disk        int     `json:"disk"`
			Status      string  `json:"status"`
			Proxy       string  `json:"proxy"`
			Transport   string  `json:"transport"`
			BytesRead   int64   `json:"bytes_read"`
			BytesSent   int64   `json:"bytes_transferred"`
			BytesStored int64   `json:"bytes_written"`
			Duration    float64 `json:"duration_seconds"`
			Rate        int64   `json:"bytes_per_second"`
			Error       string  `json:"error"`
		} `json:"disks"`
	} `json:"vms"`
	Bottleneck *struct {
		Source, Proxy, Network, Target float64
		Limit                          string
	} `json:"bottleneck"`
	maintenanceResult
	copyResult
}

// copyResult is what a copy session's result adds (see
// internal/server/orchestrator.CopyResult; "repository", the source, is
// maintenanceResult's).
type copyResult struct {
	ToRepository string   `json:"to_repository"`
	Copied       []string `json:"copied"`
	Skipped      []string `json:"skipped"`
	Forgotten    []string `json:"forgotten"`
	Copy         *struct {
		ChunksSent    int64 `json:"chunks_sent"`
		ChunksPresent int64 `json:"chunks_present"`
		BytesSent     int64 `json:"bytes_sent"`
	} `json:"copy"`
}

// print writes the copy lines of a result (source: the result's repository).
func (c copyResult) print(a *app, source string) {
	if c.ToRepository == "" {
		return
	}
	line := fmt.Sprintf("  copy %s → %s: %d restore point(s) copied, %d the target had", source, c.ToRepository,
		len(c.Copied), len(c.Skipped))
	if s := c.Copy; s != nil {
		line += fmt.Sprintf("; %d chunks sent (%s), %d present", s.ChunksSent, formatBytes(s.BytesSent), s.ChunksPresent)
	}
	fmt.Fprintln(a.stdout, line)
	if len(c.Forgotten) > 0 {
		fmt.Fprintf(a.stdout, "  retention on %s forgot: %s\n", c.ToRepository, strings.Join(c.Forgotten, " "))
	}
}

// maintenanceResult is what a maintenance session's result adds (see
// internal/server/orchestrator.MaintenanceResult).
type maintenanceResult struct {
	Repository string   `json:"repository"`
	Errors     []string `json:"errors"`
	GC         *struct {
		Referenced   int   `json:"referenced_chunks"`
		Removed      int   `json:"removed_chunks"`
		RemovedBytes int64 `json:"removed_bytes"`
		Kept         int   `json:"kept_recent_unreferenced"`
	} `json:"gc"`
	Verify *struct {
		Points   int               `json:"points"`
		Chunks   int               `json:"chunks"`
		Checked  int               `json:"chunks_read"`
		Subset   string            `json:"read_data_subset"`
		Problems []json.RawMessage `json:"problems"`
	} `json:"verify"`
}

// print writes the maintenance lines of a result.
func (m maintenanceResult) print(a *app) {
	if g := m.GC; g != nil {
		fmt.Fprintf(a.stdout, "  gc on %s: %d chunks referenced; removed %d unreferenced chunks (%s); kept %d younger than the grace period\n",
			m.Repository, g.Referenced, g.Removed, formatBytes(g.RemovedBytes), g.Kept)
	}
	if v := m.Verify; v != nil {
		read := fmt.Sprintf("%d chunks read", v.Checked)
		if v.Subset != "" {
			read += " (part " + v.Subset + ")"
		}
		fmt.Fprintf(a.stdout, "  verify on %s: %d restore points, %d chunks referenced, %s, %d problem(s)\n",
			m.Repository, v.Points, v.Chunks, read, len(v.Problems))
	}
	for _, e := range m.Errors {
		fmt.Fprintf(a.stdout, "  %s\n", e)
	}
}

// sessionFailed is returned when a waited-for session failed (exit 1).
type sessionFailed struct {
	id    int64
	state string
	msg   string
}

func (e sessionFailed) Error() string {
	s := fmt.Sprintf("session %d ended %s", e.id, e.state)
	if e.msg != "" {
		s += ": " + e.msg
	}
	return s
}

// pollSession reads a session until it is terminal.
func (a *app) pollSession(ctx context.Context, cl *apiClient, id int64, each func(apitypes.Session)) (apitypes.Session, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		var se apitypes.Session
		if err := cl.call(ctx, "GET", "/api/v1/sessions/"+strconv.FormatInt(id, 10), "read sessions", nil, &se); err != nil {
			return se, err
		}
		if each != nil {
			each(se)
		}
		switch se.State {
		case "success", "warning", "failed", "cancelled":
			return se, nil
		}
		select {
		case <-ctx.Done():
			return se, ctx.Err()
		case <-tick.C:
		}
	}
}

// waitSession follows a session to its end and prints its result.
func (a *app) waitSession(ctx context.Context, cl *apiClient, id int64, asJSON bool) error {
	said := map[int64]string{}
	se, err := a.pollSession(ctx, cl, id, func(se apitypes.Session) {
		for _, t := range se.Tasks { // tell why queued tasks wait, once per reason
			if t.State == "queued" && strings.HasPrefix(t.Error, "waiting: ") && said[t.ID] != t.Error {
				said[t.ID] = t.Error
				fmt.Fprintf(a.stderr, "holdfast: %s disk %s %s\n", t.VM, t.Disk, t.Error)
			}
		}
	})
	if err != nil {
		return err
	}
	var res sessionResult
	_ = json.Unmarshal(se.Result, &res)
	if asJSON {
		out := se.Result
		if res.Status == "" { // ended before the orchestrator wrote a result
			out, _ = json.Marshal(map[string]any{"status": se.State, "session": se.ID, "error": res.Error, "vms": []any{}})
		}
		if err := printJSON(a.stdout, out); err != nil {
			return err
		}
	} else {
		a.printResult(se, res)
	}
	if se.State == "failed" || se.State == "cancelled" {
		return sessionFailed{id: se.ID, state: se.State, msg: res.Error}
	}
	return nil
}

func (a *app) printResult(se apitypes.Session, res sessionResult) {
	fmt.Fprintf(a.stdout, "session %d (%s %s): %s in %.1fs\n", se.ID, orDash(se.Kind), orDash(se.JobName), se.State, res.Dur)
	if res.Error != "" {
		fmt.Fprintf(a.stdout, "  error: %s\n", res.Error)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(a.stdout, "  warning: %s\n", w)
	}
	for _, vm := range res.VMs {
		fmt.Fprintf(a.stdout, "  %s: %s %s\n", vm.Name, vm.Status, vm.Point)
		for _, d := range vm.Disks {
			line := fmt.Sprintf("    disk %d: %s via %s (%s), read %s, sent %s, stored %s in %.1fs (%s/s)", d.Disk, d.Status,
				orDash(d.Proxy), orDash(d.Transport), formatBytes(d.BytesRead), formatBytes(d.BytesSent),
				formatBytes(d.BytesStored), d.Duration, formatBytes(d.Rate))
			if d.Error != "" {
				line += ": " + d.Error
			}
			fmt.Fprintln(a.stdout, line)
		}
		if vm.Scan != nil {
			fmt.Fprintf(a.stdout, "    %s\n", vm.Scan.Summary)
		}
		for _, w := range vm.Warnings {
			fmt.Fprintf(a.stdout, "    warning: %s\n", w)
		}
		for _, e := range vm.Errors {
			fmt.Fprintf(a.stdout, "    %s\n", e)
		}
	}
	res.maintenanceResult.print(a)
	res.copyResult.print(a, res.Repository)
	if b := res.Bottleneck; b != nil {
		fmt.Fprintf(a.stdout, "  bottleneck: %s (source %.0f%%, proxy %.0f%%, network %.0f%%, target %.0f%%)\n",
			b.Limit, 100*b.Source, 100*b.Proxy, 100*b.Network, 100*b.Target)
	}
}
