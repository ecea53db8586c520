package main

import (
	"errors"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/spf13/pflag"
)

// scanAfterFlags are the flags of `job create` and `job edit` for the
// malware scan of each new point (jobdef.ScanAfter).
type scanAfterFlags struct {
	on                         bool
	engine, clamavDB, yaraRule string
}

func (f *scanAfterFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.on, "scan-after", false, "scan each new restore point for malware on a mount server (a proxy with the mount role); an infected point ends the session with a warning (--scan-after=false: stop scanning)")
	fs.StringVar(&f.engine, "scan-engine", jobdef.ScanClamScan, "--scan-after: engine, clamscan or yara")
	fs.StringVar(&f.clamavDB, "scan-clamav-db", "", "--scan-after: ClamAV database directory on the mount server (default /var/lib/clamav)")
	fs.StringVar(&f.yaraRule, "scan-yara-rules", "", "--scan-after: yara rules file on the mount server (required with --scan-engine yara)")
}

// apply sets the scan options of the flags that changed; the definition's
// Validate checks them.
func (f *scanAfterFlags) apply(def *jobdef.Definition, changed func(string) bool) error {
	opts := changed("scan-engine") || changed("scan-clamav-db") || changed("scan-yara-rules")
	if changed("scan-after") && !f.on {
		if opts {
			return usageError{errors.New("--scan-after=false with scan options")}
		}
		def.ScanAfter = nil
		return nil
	}
	if !changed("scan-after") && !opts {
		return nil
	}
	sa := def.ScanAfter
	if sa == nil {
		if !changed("scan-after") {
			return usageError{errors.New("--scan-engine, --scan-clamav-db and --scan-yara-rules need --scan-after")}
		}
		sa = &jobdef.ScanAfter{}
		def.ScanAfter = sa
	}
	if changed("scan-engine") {
		sa.Engine = f.engine
		if f.engine == jobdef.ScanYara {
			sa.ClamAVDB = "" // the other engine's option goes with it
		} else {
			sa.YaraRules = ""
		}
	}
	if changed("scan-clamav-db") {
		sa.ClamAVDB = f.clamavDB
	}
	if changed("scan-yara-rules") {
		sa.YaraRules = f.yaraRule
	}
	return nil
}

// scanAfterRows is job show's line for the scan after backup.
func scanAfterRows(d jobdef.Definition) [][]string {
	if d.ScanAfter == nil {
		return nil
	}
	return [][]string{{"Scan after backup:", d.ScanAfter.String()}}
}
