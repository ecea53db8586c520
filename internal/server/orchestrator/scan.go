package orchestrator

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
	"github.com/holdfast-backup/holdfast/internal/source"
	"github.com/holdfast-backup/holdfast/internal/textsafe"
)

// Scan after backup (a job's scan_after). When a VM's point is committed
// the orchestrator queues one more task in the session: a mount task with
// Mount.Scan for a proxy with the mount role, which publishes the point,
// scans it, unpublishes it and records the result on the point through
// the repository agent (internal/proxy/scan.go). The session ends after
// it. The VM's result shows the scan (ScanSummary); an infected point,
// a scan that could not run, or no mount server make the VM (and the
// session) end with a warning, never failed: the backup itself succeeded.
// The points table gets the result (point list). A scan cut off by a
// server restart runs again when the session resumes (resume.go).

// Scan results of ScanSummary beside repo.ScanClean, ScanInfected and
// ScanFailed (not scanned).
const scanSkipped = "skipped"

// noMountServer is the summary when no proxy may scan.
const noMountServer = "scan skipped: no proxy with the mount role"

// ScanSummary is a VM's scan-after result in the session result.
type ScanSummary struct {
	Result   string            `json:"result"` // clean, infected, failed (not scanned) or skipped
	Engine   string            `json:"engine,omitempty"`
	Proxy    string            `json:"proxy,omitempty"`
	Findings int               `json:"findings,omitempty"`
	First    *repo.ScanFinding `json:"first_finding,omitempty"` // guest path and signature, as the engine gave them
	Reason   string            `json:"reason,omitempty"`        // why not scanned or skipped
	Recorded bool              `json:"recorded"`                // stored on the point in the repository
	// Summary is the one line `job run --wait` prints: "scan: clean",
	// "scan: infected N (FS:PATH: SIGNATURE)", "scan: not scanned:
	// REASON" or "scan skipped: REASON" (guest names escaped).
	Summary string `json:"summary"`
}

// scanVM is the scheduler's VM name of a scan task: its own VM session,
// which the VM hooks do not know (no snapshot, no mover session).
func scanVM(vm string) string { return vm + "#scan" }

// queueScan queues the scan of a VM's committed point if the job asks
// for one. It runs in releaseVM, before the session's pending count of
// the VM's last task drops, so the session waits for the scan.
func (or *Orchestrator) queueScan(ctx context.Context, vm *vmRun, m *repo.Manifest) {
	rs := vm.sess
	or.mu.Lock()
	sa, cancelled := rs.def.ScanAfter, rs.cancelled
	or.mu.Unlock()
	if sa == nil || cancelled {
		return
	}
	if ok, err := or.mountServerOnline(ctx); err != nil || !ok {
		why := noMountServer
		if err != nil {
			why = "scan skipped: " + err.Error()
		}
		or.endScan(ctx, vm, &ScanSummary{Result: scanSkipped, Engine: sa.EngineName(), Reason: why, Summary: why})
		return
	}
	mj, err := json.Marshal(m)
	if err != nil {
		or.endScan(ctx, vm, notScanned(sa.EngineName(), err.Error()))
		return
	}
	row, err := or.store.CreateTask(ctx, configdb.Task{SessionID: rs.id, VM: vm.name, Disk: "scan", PointID: m.ID})
	if err != nil {
		or.endScan(ctx, vm, notScanned(sa.EngineName(), err.Error()))
		return
	}
	tr := &taskRun{row: row, sess: rs, vm: vm, scan: true, scanPoint: mj}
	or.mu.Lock()
	rs.tasks = append(rs.tasks, tr)
	or.tasks[row.ID] = tr
	rs.pending++
	or.mu.Unlock()
	task := scheduler.Task{ID: taskKey(row.ID), JobID: sessionKey(rs.id), VM: scanVM(vm.name), Disk: "scan",
		SourceID: mountSource, RepositoryID: rs.repo, Transports: source.AllTransports()}
	if err := or.sched.Submit(task); err != nil {
		or.mu.Lock()
		tr.ended, tr.result = true, &taskproto.Result{Error: err.Error()}
		tr.row.State, tr.row.Error = configdb.StateFailed, "queue: "+err.Error()
		rs.pending-- // not the last: the VM's own task is still pending
		row = tr.row
		or.mu.Unlock()
		or.saveTask(ctx, row)
		or.endScan(ctx, vm, notScanned(sa.EngineName(), "queue: "+err.Error()))
		return
	}
	or.log.Info("scan queued", "session", rs.id, "vm", vm.name, "point", m.ID, "engine", sa.EngineName())
}

// mountServerOnline reports whether a proxy with the mount role (not
// --no-mount) is online.
func (or *Orchestrator) mountServerOnline(ctx context.Context) (bool, error) {
	agents, err := or.store.ListAgents(ctx, configdb.AgentProxy)
	if err != nil {
		return false, err
	}
	now := or.now()
	for _, a := range agents {
		alive := !a.LastHeartbeat.IsZero() && now.Sub(a.LastHeartbeat) < or.o.AgentTimeout
		if alive && !parseCaps(a.Capabilities).NoMount {
			return true, nil
		}
	}
	return false, nil
}

// scanEndedLocked turns a scan attempt's result into the VM's scan
// summary (or.mu held).
func scanEndedLocked(tr *taskRun, r *taskproto.Result) *ScanSummary {
	engine := ""
	if d := tr.sess.def.ScanAfter; d != nil {
		engine = d.EngineName()
	}
	if r.Error != "" || r.Scan == nil {
		why := r.Error
		if why == "" {
			why = "the mount server reported no scan result"
		}
		s := notScanned(engine, why)
		s.Proxy = tr.row.Proxy
		return s
	}
	sc := r.Scan
	s := &ScanSummary{Result: sc.Result, Engine: sc.Engine, Proxy: tr.row.Proxy, Findings: sc.Findings, First: sc.First,
		Recorded: sc.Recorded}
	switch sc.Result {
	case repo.ScanClean:
		s.Summary = "scan: clean"
	case repo.ScanInfected:
		s.Summary = fmt.Sprintf("scan: infected %d", sc.Findings)
		if f := sc.First; f != nil {
			s.Summary += fmt.Sprintf(" (%s:%s: %s)", textsafe.Escape(f.Filesystem), textsafe.Escape(f.Path), textsafe.Escape(f.Signature))
		}
	default:
		s.Result, s.Reason = repo.ScanFailed, sc.Error
		s.Summary = "scan: not scanned: " + sc.Error
	}
	return s
}

func notScanned(engine, why string) *ScanSummary {
	why = textsafe.Escape(why)
	return &ScanSummary{Result: repo.ScanFailed, Engine: engine, Reason: why, Summary: "scan: not scanned: " + why}
}

// endScan records a VM's scan outcome: in the session result and, when
// the scan ran, on the point in the points table.
func (or *Orchestrator) endScan(ctx context.Context, vm *vmRun, s *ScanSummary) {
	or.mu.Lock()
	vm.scan = s
	point := vm.point
	or.mu.Unlock()
	if s.Result != repo.ScanClean {
		or.log.Warn(s.Summary, "session", vm.sess.id, "vm", vm.name)
	}
	if s.Result == scanSkipped || point == nil {
		return
	}
	err := or.store.SetPointScan(context.WithoutCancel(ctx), vm.sess.repo, point.ID,
		configdb.PointScan{Engine: s.Engine, Result: s.Result, Findings: s.Findings, Time: or.now()})
	if err != nil {
		or.log.Warn("record the scan of a point", "point", point.ID, "err", err)
	}
}
