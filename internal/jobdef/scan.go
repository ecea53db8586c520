package jobdef

import "path/filepath"

// Scan engines of ScanAfter (internal/scan's engine names).
const (
	ScanClamScan = "clamscan"
	ScanYara     = "yara"
)

// ScanAfter asks for a malware scan of each point a backup session
// commits (`job create --scan-after`):
//
//	"scan_after": {"engine": "clamscan", "clamav_db": "/var/lib/clamav"}
//	"scan_after": {"engine": "yara", "yara_rules": "/etc/holdfast/eicar.yar"}
//
// A mount server (a proxy with the mount role) publishes the point, runs
// the engine over its guest filesystems and records the result on the
// point; the paths are on that host. Engine "" is clamscan; clamav_db ""
// is the engine's default database (/var/lib/clamav).
type ScanAfter struct {
	Engine    string `json:"engine,omitempty"`
	ClamAVDB  string `json:"clamav_db,omitempty"`
	YaraRules string `json:"yara_rules,omitempty"`
}

// EngineName is the engine, clamscan when none is given.
func (s *ScanAfter) EngineName() string {
	if s.Engine == "" {
		return ScanClamScan
	}
	return s.Engine
}

// check validates the scan options (nil: no scan).
func (s *ScanAfter) check() error {
	if s == nil {
		return nil
	}
	const f = "definition.scan_after."
	switch s.EngineName() {
	case ScanClamScan:
		if s.YaraRules != "" {
			return fieldErr(f+"yara_rules", "yara rules with engine clamscan (give engine yara, or clamav_db)")
		}
		if s.ClamAVDB != "" && !filepath.IsAbs(s.ClamAVDB) {
			return fieldErr(f+"clamav_db", "%q: give an absolute path on the mount server", s.ClamAVDB)
		}
	case ScanYara:
		if s.ClamAVDB != "" {
			return fieldErr(f+"clamav_db", "a ClamAV database with engine yara (give engine clamscan, or yara_rules)")
		}
		if s.YaraRules == "" {
			return fieldErr(f+"yara_rules", "engine yara needs a rules file")
		}
		if !filepath.IsAbs(s.YaraRules) {
			return fieldErr(f+"yara_rules", "%q: give an absolute path on the mount server", s.YaraRules)
		}
	default:
		return fieldErr(f+"engine", "%q: want clamscan or yara", s.Engine)
	}
	return nil
}

// String describes the scan for `job show`: "clamscan (database DIR)" or
// "yara (rules FILE)".
func (s *ScanAfter) String() string {
	if s.EngineName() == ScanYara {
		return ScanYara + " (rules " + s.YaraRules + ")"
	}
	db := s.ClamAVDB
	if db == "" {
		db = "/var/lib/clamav"
	}
	return ScanClamScan + " (database " + db + ")"
}
