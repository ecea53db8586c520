package apitypes

import "time"

// SchedulePreview is the answer of GET /api/v1/schedule/preview: the next
// times a schedule fires (UTC; none for "" and "after JOB") and the job an
// "after JOB" schedule follows.
type SchedulePreview struct {
	Schedule string      `json:"schedule"`
	Next     []time.Time `json:"next"`
	After    string      `json:"after,omitempty"`
}

// SourceVMs is the answer of GET /api/v1/sources/{name}/vms: the VMs a
// selection picks from the source now.
type SourceVMs struct {
	Source   string     `json:"source"`
	VMs      []SourceVM `json:"vms"`
	Warnings []string   `json:"warnings,omitempty"`
}

// SourceVM is one VM of a source, its disks redacted (no credentials).
type SourceVM struct {
	Name  string   `json:"name"`
	Disks []string `json:"disks"`
}
