package jobdef

import "fmt"

// Job kinds.
const (
	KindBackup = "backup" // the default: back up VMs
	// KindMaintenance runs gc and verify on a repository, through its
	// repository agent (the agent does the work on its own storage).
	KindMaintenance = "maintenance"
)

// What a schedule missed while the server was down does at start.
const (
	MissedRunOnce = "run-once" // the default: run once, however many firings were missed
	MissedSkip    = "skip"     // wait for the next firing
)

// DefaultGCGraceSeconds is a maintenance gc's grace period when the job
// gives none (as `holdfast gc`).
const DefaultGCGraceSeconds = 3600

// Maintenance is a maintenance job's work on its repository:
//
//	{"repository": "repo1", "password_secret": "…",
//	 "maintenance": {"gc": true, "gc_grace_seconds": 3600,
//	                 "verify": true, "read_data_percent": 10}}
//
// Verify checks every manifest and index and that every referenced chunk
// exists; with ReadDataPercent it also reads, decrypts and re-hashes that
// share of the chunks each run, a different share each run, so that every
// chunk is read over 100/ReadDataPercent runs (see ReadDataParts).
type Maintenance struct {
	GC              bool `json:"gc,omitempty"`
	GCGraceSeconds  *int `json:"gc_grace_seconds,omitempty"` // nil: DefaultGCGraceSeconds
	Verify          bool `json:"verify,omitempty"`
	ReadDataPercent int  `json:"read_data_percent,omitempty"` // 0: read no data; 100: all each run
}

// GCGrace is the gc's grace period in seconds (DefaultGCGraceSeconds
// when the job gives none).
func (m Maintenance) GCGrace() int {
	if m.GCGraceSeconds == nil {
		return DefaultGCGraceSeconds
	}
	return *m.GCGraceSeconds
}

// ReadDataParts is how many parts the chunks are split into for reading:
// one part is read per run (at least the share asked); 0: none.
func (m Maintenance) ReadDataParts() int {
	if m.ReadDataPercent <= 0 {
		return 0
	}
	return 100 / m.ReadDataPercent
}

// ValidateKind checks a definition for a job of the given kind ("":
// backup): Validate for a backup job; a repository and some work for a
// maintenance job.
func (d Definition) ValidateKind(kind string) error {
	var err error
	switch kind {
	case "", KindBackup:
		err = d.Validate()
	case KindMaintenance:
		err = d.validateMaintenance()
	case KindCopy:
		err = d.validateCopy()
	default:
		return fieldErr("kind", "%q: want %s, %s or %s", kind, KindBackup, KindMaintenance, KindCopy)
	}
	if err != nil {
		return err
	}
	return checkNotify(d.Notify)
}

func (d Definition) validateMaintenance() error {
	if d.Repository == "" {
		return fieldErr("definition.repository", "the job names no repository")
	}
	if len(d.VMs) > 0 || len(d.Select) > 0 {
		return fieldErr("definition.vms", "a maintenance job backs up no VMs")
	}
	if d.Copy != nil {
		return fieldErr("definition.copy", "only a copy job (kind %s) copies", KindCopy)
	}
	m := d.Maintenance
	if m == nil || (!m.GC && !m.Verify) {
		return fieldErr("definition.maintenance", "a maintenance job does nothing: give gc, verify or both")
	}
	if m.GCGraceSeconds != nil && *m.GCGraceSeconds < 0 {
		return fieldErr("definition.maintenance.gc_grace_seconds", "negative (%d)", *m.GCGraceSeconds)
	}
	if m.ReadDataPercent < 0 || m.ReadDataPercent > 100 {
		return fieldErr("definition.maintenance.read_data_percent", "%d: want 1 to 100 (0: read no data)", m.ReadDataPercent)
	}
	if m.ReadDataPercent > 0 && !m.Verify {
		return fieldErr("definition.maintenance.read_data_percent", "reading data is part of verify: give verify too")
	}
	return checkMissed(d.Missed)
}

func checkMissed(m string) error {
	switch m {
	case "", MissedRunOnce, MissedSkip:
		return nil
	}
	return fieldErr("definition.missed", "%q: want %s or %s", m, MissedRunOnce, MissedSkip)
}

// SkipsMissed reports whether a schedule missed while the server was down
// waits for its next firing instead of running once at start.
func (d Definition) SkipsMissed() bool { return d.Missed == MissedSkip }

// String renders the work, e.g. "gc, verify (read 10% of the data per run)".
func (m Maintenance) String() string {
	var s string
	if m.GC {
		s = "gc"
	}
	if m.Verify {
		if s != "" {
			s += ", "
		}
		s += "verify"
		if m.ReadDataPercent > 0 {
			s += fmt.Sprintf(" (read %d%% of the data per run)", m.ReadDataPercent)
		}
	}
	return s
}
