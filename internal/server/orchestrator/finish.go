package orchestrator

import (
	"fmt"

	"context"
	"encoding/json"
	"github.com/holdfast-backup/holdfast/internal/repo"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// Result is a session's result document, stored with the session and
// printed by `job run --wait --json`.
type Result struct {
	Status     configdb.State `json:"status"`
	Session    int64          `json:"session"`
	Job        string         `json:"job,omitempty"`
	Kind       string         `json:"kind"`
	Started    time.Time      `json:"started"`
	Ended      time.Time      `json:"ended"`
	Duration   float64        `json:"duration_seconds"`
	VMs        []VMResult     `json:"vms"`
	Bottleneck *Bottleneck    `json:"bottleneck,omitempty"`
	Error      string         `json:"error,omitempty"`
	// Warnings are the session's own (a selection that picked no VM).
	Warnings []string `json:"warnings,omitempty"`
}

// VMResult is one VM of a session.
type VMResult struct {
	Name       string         `json:"name"`
	Status     configdb.State `json:"status"`
	Point      string         `json:"point,omitempty"`
	Repository string         `json:"repository"`
	Disks      []DiskResult   `json:"disks"`
	Errors     []string       `json:"errors,omitempty"`
	Warnings   []string       `json:"warnings,omitempty"`
	Forgotten  []string       `json:"forgotten,omitempty"` // points retention removed
	Retries    int            `json:"retries,omitempty"`   // re-runs after a failure
	History    []string       `json:"history,omitempty"`   // errors of the earlier runs
	Guest      []GuestResult  `json:"guest,omitempty"`     // guest scripts (pre-freeze, post-thaw)
	Scan       *ScanSummary   `json:"scan,omitempty"`      // the malware scan of the point (scan_after)
}

// DiskResult is one disk task of a session.
type DiskResult struct {
	Disk             int            `json:"disk"`
	Source           string         `json:"source,omitempty"`
	Target           string         `json:"target,omitempty"`
	Status           configdb.State `json:"status"`
	Proxy            string         `json:"proxy"`
	Repository       string         `json:"repository"`
	Transport        string         `json:"transport"`
	Attempts         int            `json:"attempts"`
	BytesTotal       int64          `json:"bytes_total"`
	BytesRead        int64          `json:"bytes_read"`
	BytesTransferred int64          `json:"bytes_transferred"`
	BytesWritten     int64          `json:"bytes_written"`
	Duration         float64        `json:"duration_seconds"`
	Rate             int64          `json:"bytes_per_second"` // disk bytes processed per second
	Error            string         `json:"error,omitempty"`
	Warnings         []string       `json:"warnings,omitempty"`
}

// finishSession ends a session whose tasks all ended.
func (or *Orchestrator) finishSession(ctx context.Context, rs *runSession) {
	res := or.result(rs)
	b, _ := json.Marshal(res)
	if _, err := or.store.UpdateSession(ctx, rs.id, res.Status, b); err != nil {
		or.log.Error("end session", "session", rs.id, "err", err)
	}
	or.forget(rs)
	or.sched.ForgetJob(sessionKey(rs.id))
	or.logEnded(ctx, res)
	if rs.job != "" && rs.kind == taskproto.KindBackup {
		or.fireChained(ctx, rs.job)
	}
}

// result builds the result document.
func (or *Orchestrator) result(rs *runSession) Result {
	or.mu.Lock()
	defer or.mu.Unlock()
	res := Result{Session: rs.id, Job: rs.job, Kind: rs.kind, Started: rs.started.UTC(), Ended: or.now().UTC(),
		Warnings: rs.warnings}
	res.Duration = res.Ended.Sub(res.Started).Seconds()
	var st taskproto.Stages
	failedVMs, warned := 0, len(rs.warnings) > 0
	for _, vm := range rs.vms {
		v := VMResult{Name: vm.name, Status: configdb.StateSuccess, Repository: rs.repo, Errors: vm.failed,
			Warnings: vm.warnings, Forgotten: vm.forgotten, Retries: vm.retries, History: vm.history,
			Guest: vm.guest}
		if len(vm.warnings) > 0 || (vm.scan != nil && vm.scan.Result != repo.ScanClean) {
			v.Status = configdb.StateWarning
		}
		v.Scan = vm.scan
		if vm.point != nil {
			v.Point = vm.point.ID
		}
		if diskResultsLocked(rs, vm, &v, &st) {
			v.Status = configdb.StateWarning
		}
		if rs.kind == taskproto.KindMount && rs.cancelled {
			vm.failed = nil // stopped, as asked
		}
		if len(vm.failed) > 0 || (rs.kind == taskproto.KindBackup && vm.point == nil) {
			v.Status = configdb.StateFailed
			failedVMs++
		} else if v.Status == configdb.StateWarning {
			warned = true
		}
		res.VMs = append(res.VMs, v)
	}
	switch {
	case rs.kind == taskproto.KindMount && rs.cancelled:
		res.Status = configdb.StateSuccess // an Instant VM Recovery session ends by being stopped
	case rs.cancelled:
		res.Status, res.Error = configdb.StateCancelled, "cancelled by request"
	case failedVMs > 0:
		res.Status = configdb.StateFailed
	case warned:
		res.Status = configdb.StateWarning
	default:
		res.Status = configdb.StateSuccess
	}
	res.Bottleneck = bottleneck(st)
	return res
}

// diskResultsLocked adds the disk results of a VM's tasks (not its scan)
// to v and their stage times to st; it reports whether a disk warned.
func diskResultsLocked(rs *runSession, vm *vmRun, v *VMResult, st *taskproto.Stages) (warned bool) {
	for _, tr := range rs.tasks {
		if tr.vm != vm || tr.scan {
			continue
		}
		row := tr.row
		d := DiskResult{Disk: tr.disk, Source: tr.spec.String(), Target: tr.target, Status: row.State, Proxy: row.Proxy,
			Repository: row.Repository, Transport: row.Transport, Attempts: row.Attempt,
			BytesTotal: row.BytesTotal, BytesRead: row.BytesRead, BytesTransferred: row.BytesTransferred,
			BytesWritten: row.BytesWritten, Error: row.Error, Warnings: row.Warnings}
		if tr.result != nil {
			d.Duration = tr.result.Duration.Seconds()
			if d.Duration > 0 {
				d.Rate = int64(float64(tr.result.BytesDone) / d.Duration)
			}
			st.SourceNanos += tr.result.SourceNanos
			st.ProxyNanos += tr.result.ProxyNanos
			st.NetworkNanos += tr.result.NetworkNanos
			st.TargetNanos += tr.result.TargetNanos
		}
		if row.State == configdb.StateWarning {
			warned = true
		}
		if tr.wholeVM && vm.point != nil {
			v.Disks = append(v.Disks, vmDisks(d, vm.point.Disks)...)
			continue
		}
		v.Disks = append(v.Disks, d)
	}
	return warned
}

// vmDisks expands the one task of a qemu:// VM into its disks, from the
// committed manifest; the task's traffic is shown on the first disk.
func vmDisks(task DiskResult, disks []repo.DiskManifest) []DiskResult {
	out := make([]DiskResult, 0, len(disks))
	for i, dm := range disks {
		d := task
		d.Disk, d.Transport, d.BytesTotal = dm.Index, dm.Transport, dm.Size
		d.BytesRead, d.BytesWritten, d.Warnings = dm.Stats.BytesRead, dm.Stats.BytesStored, dm.Warnings
		d.Source = fmt.Sprintf("%s disk %d (%s)", task.Source, dm.Index, dm.Location)
		if i > 0 {
			d.BytesTransferred = 0
		}
		out = append(out, d)
	}
	return out
}
