package api

import (
	"encoding/json"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// JSON views of configdb records. Times are RFC 3339 UTC; zero times are
// omitted.

type jobView struct {
	ID          int64           `json:"id"`
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	Definition  json.RawMessage `json:"definition"`
	Schedule    string          `json:"schedule"`
	Enabled     bool            `json:"enabled"`
	PasswordRef string          `json:"password_ref,omitempty"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
}

func viewJob(j configdb.Job) jobView {
	return jobView{ID: j.ID, Name: j.Name, Kind: j.Kind, Definition: j.Definition, Schedule: j.Schedule,
		Enabled: j.Enabled, PasswordRef: secretRef(j.Definition), Created: j.Created, Updated: j.Updated}
}

type sourceView struct {
	ID          int64           `json:"id"`
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	Definition  json.RawMessage `json:"definition"`
	PasswordRef string          `json:"password_ref,omitempty"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
}

func viewSource(s configdb.Source) sourceView {
	return sourceView{ID: s.ID, Name: s.Name, Kind: s.Kind, Definition: s.Definition,
		PasswordRef: secretRef(s.Definition), Created: s.Created, Updated: s.Updated}
}

type sessionView struct {
	ID      int64           `json:"id"`
	JobID   int64           `json:"job_id,omitempty"`
	JobName string          `json:"job_name,omitempty"`
	Kind    string          `json:"kind"`
	State   configdb.State  `json:"state"`
	Started time.Time       `json:"started"`
	Ended   *time.Time      `json:"ended,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Tasks   []taskView      `json:"tasks,omitempty"`
}

func viewSession(se configdb.Session) sessionView {
	return sessionView{ID: se.ID, JobID: se.JobID, JobName: se.JobName, Kind: se.Kind, State: se.State,
		Started: se.Started, Ended: optTime(se.Ended), Result: se.Result}
}

type taskView struct {
	ID               int64          `json:"id"`
	VM               string         `json:"vm"`
	Disk             string         `json:"disk"`
	Proxy            string         `json:"proxy,omitempty"`
	Repository       string         `json:"repository,omitempty"`
	Transport        string         `json:"transport,omitempty"`
	State            configdb.State `json:"state"`
	Queued           time.Time      `json:"queued"`
	Started          *time.Time     `json:"started,omitempty"`
	Ended            *time.Time     `json:"ended,omitempty"`
	BytesTotal       int64          `json:"bytes_total"`
	BytesRead        int64          `json:"bytes_read"`
	BytesTransferred int64          `json:"bytes_transferred"`
	BytesWritten     int64          `json:"bytes_written"`
	BytesDone        int64          `json:"bytes_done"`
	Attempt          int            `json:"attempt"`
	PointID          string         `json:"point_id,omitempty"`
	SourceNanos      int64          `json:"source_ns"`
	ProxyNanos       int64          `json:"proxy_ns"`
	NetworkNanos     int64          `json:"network_ns"`
	TargetNanos      int64          `json:"target_ns"`
	Warnings         []string       `json:"warnings,omitempty"`
	Error            string         `json:"error,omitempty"`
}

func viewTask(t configdb.Task) taskView {
	return taskView{ID: t.ID, VM: t.VM, Disk: t.Disk, Proxy: t.Proxy, Repository: t.Repository,
		Transport: t.Transport, State: t.State, Queued: t.Queued, Started: optTime(t.Started),
		Ended: optTime(t.Ended), BytesTotal: t.BytesTotal, BytesRead: t.BytesRead,
		BytesTransferred: t.BytesTransferred, BytesWritten: t.BytesWritten, BytesDone: t.BytesDone, Attempt: t.Attempt, PointID: t.PointID,
		SourceNanos: t.SourceNanos, ProxyNanos: t.ProxyNanos, NetworkNanos: t.NetworkNanos, TargetNanos: t.TargetNanos,
		Warnings: t.Warnings, Error: t.Error}
}

type pointView struct {
	ID          string          `json:"id"`
	Repository  string          `json:"repository"`
	VM          string          `json:"vm"`
	Job         string          `json:"job,omitempty"`
	Session     int64           `json:"session,omitempty"`
	Created     time.Time       `json:"created"`
	Disks       json.RawMessage `json:"disks"`
	BytesTotal  int64           `json:"bytes_total"`
	BytesStored int64           `json:"bytes_stored"`
}

func viewPoint(p configdb.Point) pointView {
	return pointView{ID: p.ID, Repository: p.Repository, VM: p.VM, Job: p.JobName, Session: p.SessionID,
		Created: p.Created, Disks: p.Disks, BytesTotal: p.BytesTotal, BytesStored: p.BytesStored}
}

type agentView struct {
	ID              int64           `json:"id"`
	Role            string          `json:"role"`
	Name            string          `json:"name"`
	Address         string          `json:"address,omitempty"`
	Slots           int             `json:"slots"`
	Capabilities    json.RawMessage `json:"capabilities,omitempty"`
	CertFingerprint string          `json:"cert_fingerprint,omitempty"`
	Registered      time.Time       `json:"registered"`
	LastHeartbeat   *time.Time      `json:"last_heartbeat,omitempty"`
}

func viewAgent(a configdb.Agent) agentView {
	return agentView{ID: a.ID, Role: a.Role, Name: a.Name, Address: a.Address, Slots: a.Slots,
		Capabilities: a.Capabilities, CertFingerprint: a.CertFingerprint, Registered: a.Registered,
		LastHeartbeat: optTime(a.LastHeartbeat)}
}

type tokenView struct {
	ID       int64         `json:"id"`
	Name     string        `json:"name"`
	Role     configdb.Role `json:"role"`
	Created  time.Time     `json:"created"`
	LastUsed *time.Time    `json:"last_used,omitempty"`
}

type auditView struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Action  string          `json:"action"`
	Target  string          `json:"target,omitempty"`
	Details json.RawMessage `json:"details,omitempty"`
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
