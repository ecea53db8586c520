package apitypes

import "time"

// Dashboard answers GET /api/v1/dashboard: the estate at a glance, in one
// call cheap enough to poll every few seconds.
type Dashboard struct {
	Time         time.Time            `json:"time"` // the server's now, which the windows end at
	Sessions     DashboardSessions    `json:"sessions"`
	RPO          DashboardRPO         `json:"rpo"`
	Repositories []RepositoryCapacity `json:"repositories"`
	Agents       []AgentCount         `json:"agents"` // by role: proxy, repository
	// Running are the queued and running sessions (newest first, at most
	// 100), each with its tasks, Waiting and Progress as GET
	// /api/v1/sessions/{id} gives them.
	Running []Session `json:"running"`
}

// DashboardSessions counts the sessions of any kind started in the last
// 24 h (Since to the dashboard's Time, both included).
type DashboardSessions struct {
	Since   time.Time      `json:"since"`
	ByState map[string]int `json:"by_state"` // every state, 0 included
	// Hours are one bucket per UTC clock hour from Since's hour to Time's
	// (25: the first and the last are partial), oldest first.
	Hours []HourBucket `json:"hours"`
}

// HourBucket counts the sessions started in one clock hour, by state
// (states with none are left out).
type HourBucket struct {
	Start   time.Time      `json:"start"`
	ByState map[string]int `json:"by_state"`
}

// DashboardRPO lists the VMs without a good restore point within their
// job's RPO (jobdef.EffectiveRPO), the most overdue first.
type DashboardRPO struct {
	JobsChecked int            `json:"jobs_checked"` // backup jobs that have an RPO
	VMsChecked  int            `json:"vms_checked"`
	Violations  []RPOViolation `json:"violations"`
}

// RPOViolation is a VM of a job whose newest good point (a point the job
// made that no scan found infected) is older than the job's RPO, or which
// has none.
type RPOViolation struct {
	VM         string `json:"vm"`
	Job        string `json:"job"`
	JobEnabled bool   `json:"job_enabled"`
	RPOSeconds int64  `json:"rpo_seconds"`
	RPOSource  string `json:"rpo_source"` // explicit or schedule
	// LastPoint is when the newest good point was taken; null: none.
	LastPoint  *time.Time `json:"last_point,omitempty"`
	AgeSeconds int64      `json:"age_seconds,omitempty"` // Time − LastPoint
}

// RepositoryCapacity is a repository agent's file system as it reports
// it, and how its use grew over the last 7 days of daily samples.
type RepositoryCapacity struct {
	Name   string `json:"name"`
	Online bool   `json:"online"`
	// Known is false when the agent reports no capacity (object
	// storage, an older agent, or an error: Error says which).
	Known     bool   `json:"known"`
	Error     string `json:"error,omitempty"`
	SizeBytes int64  `json:"size_bytes"`
	FreeBytes int64  `json:"free_bytes"`
	UsedBytes int64  `json:"used_bytes"`
	// Growth7dBytes is the used bytes now minus those of the oldest daily
	// sample within the last 7 days (GrowthSince); 0 and no GrowthSince
	// before there are two days of samples.
	Growth7dBytes int64            `json:"growth_7d_bytes"`
	GrowthSince   string           `json:"growth_since,omitempty"` // YYYY-MM-DD
	Daily         []CapacitySample `json:"daily"`                  // oldest first
}

// CapacitySample is a repository's use on a UTC day (its last sample).
type CapacitySample struct {
	Day       string `json:"day"` // YYYY-MM-DD
	UsedBytes int64  `json:"used_bytes"`
	FreeBytes int64  `json:"free_bytes"`
}

// AgentCount counts the agents of a role that heartbeated within the
// server's agent timeout (online) and those that did not (offline, named).
type AgentCount struct {
	Role         string   `json:"role"`
	Online       int      `json:"online"`
	Offline      int      `json:"offline"`
	OfflineNames []string `json:"offline_names"`
}

// SessionProgress sums a session's tasks: bytes processed of the disks'
// total, the rate over the time its tasks have run, and tasks per state.
type SessionProgress struct {
	BytesDone      int64          `json:"bytes_done"`
	BytesTotal     int64          `json:"bytes_total"`
	BytesPerSecond int64          `json:"bytes_per_second"`
	TasksByState   map[string]int `json:"tasks_by_state"`
}
