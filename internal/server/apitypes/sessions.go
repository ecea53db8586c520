package apitypes

import (
	"encoding/json"
	"time"
)

// Session is a job, restore or instant-recovery session, with its tasks
// when one session is asked for.
type Session struct {
	ID      int64           `json:"id"`
	JobID   int64           `json:"job_id,omitempty"`
	JobName string          `json:"job_name,omitempty"`
	Kind    string          `json:"kind"`
	State   string          `json:"state"`
	Started time.Time       `json:"started"`
	Ended   *time.Time      `json:"ended,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	// Waiting says why a session that runs has no task running yet, e.g.
	// "waiting: no proxy can reach vm1 (…)" (GET /sessions/{id} only).
	Waiting string `json:"waiting,omitempty"`
	Tasks   []Task `json:"tasks,omitempty"`
	// Progress sums the tasks (GET /sessions/{id} and the dashboard).
	Progress *SessionProgress `json:"progress,omitempty"`
}

// Task is one task (one VM disk) of a session.
type Task struct {
	ID               int64      `json:"id"`
	VM               string     `json:"vm"`
	Disk             string     `json:"disk"`
	Proxy            string     `json:"proxy,omitempty"`
	Repository       string     `json:"repository,omitempty"`
	Transport        string     `json:"transport,omitempty"`
	State            string     `json:"state"`
	Queued           time.Time  `json:"queued"`
	Started          *time.Time `json:"started,omitempty"`
	Ended            *time.Time `json:"ended,omitempty"`
	BytesTotal       int64      `json:"bytes_total"`
	BytesRead        int64      `json:"bytes_read"`
	BytesTransferred int64      `json:"bytes_transferred"`
	BytesWritten     int64      `json:"bytes_written"`
	BytesDone        int64      `json:"bytes_done"`
	Attempt          int        `json:"attempt"`
	PointID          string     `json:"point_id,omitempty"`
	SourceNanos      int64      `json:"source_ns"`
	ProxyNanos       int64      `json:"proxy_ns"`
	NetworkNanos     int64      `json:"network_ns"`
	TargetNanos      int64      `json:"target_ns"`
	Warnings         []string   `json:"warnings,omitempty"`
	Error            string     `json:"error,omitempty"`
}

// Mount answers POST /api/v1/instant-recoveries: the session, and the NBD
// client credentials — returned in this answer only, kept nowhere.
type Mount struct {
	Session
	NBDTLS *MountCredentials `json:"nbd_tls,omitempty"`
}

// MountCredentials are the requester's secret for a session's NBD exports,
// for QEMU's tls-creds-x509 (endpoint=client): client-cert.pem and
// client-key.pem; ca-cert.pem is the CA of the exports' certificate (the
// session result's serving.nbd_ca once the mount server serves) followed by
// ClientCA, which issued the client certificate.
type MountCredentials struct {
	ClientCert string `json:"client_cert"`
	ClientKey  string `json:"client_key"`
	ClientCA   string `json:"client_ca"`
}

// Point is a restore point: as the server recorded it (GET /api/v1/points,
// `holdfast point list --json`) and as a repository holds it (`holdfast
// points --json`): one shape and the same keys for both. Time is when the
// backup's snapshot was taken (the manifest's "time"); Disks are the
// manifest's disks (docs/repository-format.md); Job and Session are empty
// for a point not made by a server job.
type Point struct {
	ID          string          `json:"id"`
	Repository  string          `json:"repository"`
	VM          string          `json:"vm"`
	Job         string          `json:"job"`
	Session     int64           `json:"session"`
	Time        time.Time       `json:"time"`
	Disks       json.RawMessage `json:"disks"`
	BytesTotal  int64           `json:"bytes_total"`
	BytesStored int64           `json:"bytes_stored"`
	// Scan is the newest malware scan recorded on the point (in the
	// server's list: the newest its jobs ran, scan_after); null when it
	// was never scanned.
	Scan *PointScan `json:"scan"`
}

// PointScan is a restore point's newest malware scan result.
type PointScan struct {
	Engine   string    `json:"engine"`
	Result   string    `json:"result"` // clean, infected or failed
	Findings int       `json:"findings"`
	Time     time.Time `json:"time"`
}
