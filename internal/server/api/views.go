package api

import (
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// The API's answers are the types of internal/server/apitypes, built from
// configdb records here. Times are RFC 3339 UTC; zero times are omitted.

func viewJob(j configdb.Job) apitypes.Job {
	return apitypes.Job{ID: j.ID, Name: j.Name, Kind: j.Kind, Definition: j.Definition, Schedule: j.Schedule,
		Enabled: j.Enabled, PasswordRef: secretRef(j.Definition), Created: j.Created, Updated: j.Updated}
}

func viewSource(s configdb.Source) apitypes.Source {
	return apitypes.Source{ID: s.ID, Name: s.Name, Kind: s.Kind, Definition: s.Definition,
		PasswordRef: secretRef(s.Definition), Created: s.Created, Updated: s.Updated}
}

func viewSession(se configdb.Session) apitypes.Session {
	return apitypes.Session{ID: se.ID, JobID: se.JobID, JobName: se.JobName, Kind: se.Kind, State: string(se.State),
		Started: se.Started, Ended: optTime(se.Ended), Result: se.Result}
}

func viewTask(t configdb.Task) apitypes.Task {
	return apitypes.Task{ID: t.ID, VM: t.VM, Disk: t.Disk, Proxy: t.Proxy, Repository: t.Repository,
		Transport: t.Transport, State: string(t.State), Queued: t.Queued, Started: optTime(t.Started),
		Ended: optTime(t.Ended), BytesTotal: t.BytesTotal, BytesRead: t.BytesRead,
		BytesTransferred: t.BytesTransferred, BytesWritten: t.BytesWritten, BytesDone: t.BytesDone, Attempt: t.Attempt, PointID: t.PointID,
		SourceNanos: t.SourceNanos, ProxyNanos: t.ProxyNanos, NetworkNanos: t.NetworkNanos, TargetNanos: t.TargetNanos,
		Warnings: t.Warnings, Error: t.Error}
}

func viewPoint(p configdb.Point) apitypes.Point {
	v := apitypes.Point{ID: p.ID, Repository: p.Repository, VM: p.VM, Job: p.JobName, Session: p.SessionID,
		Time: p.Created, Disks: p.Disks, BytesTotal: p.BytesTotal, BytesStored: p.BytesStored}
	if p.Scan.Result != "" {
		v.Scan = &apitypes.PointScan{Engine: p.Scan.Engine, Result: p.Scan.Result, Findings: p.Scan.Findings, Time: p.Scan.Time}
	}
	return v
}

func viewAgent(a configdb.Agent) apitypes.Agent {
	return apitypes.Agent{ID: a.ID, Role: a.Role, Name: a.Name, Address: a.Address, Slots: a.Slots,
		Capabilities: a.Capabilities, CertFingerprint: a.CertFingerprint, Registered: a.Registered,
		LastHeartbeat: optTime(a.LastHeartbeat)}
}

func viewToken(t configdb.APIToken) apitypes.Token {
	return apitypes.Token{ID: t.ID, Name: t.Name, Role: string(t.Role), Created: t.Created, LastUsed: optTime(t.LastUsed)}
}

func viewAudit(e configdb.AuditEntry) apitypes.AuditEntry {
	return apitypes.AuditEntry{ID: e.ID, At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target, Details: e.Details}
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// list returns xs mapped by f, never nil (so it encodes as []).
func list[T, V any](xs []T, f func(T) V) []V {
	out := make([]V, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}
