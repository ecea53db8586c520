package apitypes

import (
	"encoding/json"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
)

// JobRequest is the body of POST /api/v1/jobs and PUT /api/v1/jobs/{name}.
// The definition is decoded strictly (jobdef.Decode): unknown keys are
// refused by name.
type JobRequest struct {
	Name       string             `json:"name,omitempty"` // on PUT: a new name
	Kind       string             `json:"kind,omitempty"`
	Definition *jobdef.Definition `json:"definition"`
	Schedule   string             `json:"schedule"`
	Enabled    *bool              `json:"enabled,omitempty"`  // default true (create), unchanged (edit)
	Password   string             `json:"password,omitempty"` // repository password, sealed as a secret
}

// Job is a stored job. Definition is the stored document (secrets sealed:
// password_secret and guest_ssh_key_secret name them).
type Job struct {
	ID          int64           `json:"id"`
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	Definition  json.RawMessage `json:"definition,omitempty"` // left out by GET /jobs?summary=true
	Schedule    string          `json:"schedule"`
	Enabled     bool            `json:"enabled"`
	PasswordRef string          `json:"password_ref,omitempty"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
	// NextRun is when the schedule fires next (absent: disabled, on
	// demand only, or "after JOB"); LastRun is the newest session.
	NextRun *time.Time `json:"next_run,omitempty"`
	LastRun *JobRun    `json:"last_run,omitempty"`
}

// JobRun is a job's newest session: its state and times.
type JobRun struct {
	Session int64      `json:"session"`
	State   string     `json:"state"`
	Started time.Time  `json:"started"`
	Ended   *time.Time `json:"ended,omitempty"`
}

// SourceRequest is the body of POST /api/v1/sources.
type SourceRequest struct {
	Name       string          `json:"name"`
	Kind       string          `json:"kind"`
	Definition json.RawMessage `json:"definition,omitempty"` // {"address": …}; vSphere: vspheresrc.Definition; libvirt: libvirtsrc.Definition
	Password   string          `json:"password,omitempty"`   // credentials, sealed as a secret
}

// Source is a stored source.
type Source struct {
	ID          int64           `json:"id"`
	Name        string          `json:"name"`
	Kind        string          `json:"kind"`
	Definition  json.RawMessage `json:"definition"`
	PasswordRef string          `json:"password_ref,omitempty"`
	Created     time.Time       `json:"created"`
	Updated     time.Time       `json:"updated"`
	// Warnings are what the server found doubtful when the source was
	// added (a vSphere password file others may read).
	Warnings []string `json:"warnings,omitempty"`
}

// SourceAddress is the part of a source's definition naming where it is.
type SourceAddress struct {
	Address string `json:"address"`
}
