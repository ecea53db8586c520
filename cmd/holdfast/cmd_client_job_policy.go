package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/spf13/pflag"
)

// policyFlags are the flags of `job create` and `job edit` for retention
// (the GFS policy of `forget`), missed schedules and maintenance jobs.
type policyFlags struct {
	retentionLast, retentionDaily, retentionWeekly int
	retentionMonthly, retentionYearly              int
	missed                                         string
	gc, verify                                     bool
	gcGrace                                        time.Duration
	readData                                       string
}

func (f *policyFlags) register(fs *pflag.FlagSet) {
	fs.IntVar(&f.retentionLast, "retention-last", 0, "keep the last N restore points per VM (all --retention-* 0: keep all)")
	fs.IntVar(&f.retentionDaily, "retention-daily", 0, "keep the newest point of each of the last N days, per VM")
	fs.IntVar(&f.retentionWeekly, "retention-weekly", 0, "keep the newest point of each of the last N weeks, per VM")
	fs.IntVar(&f.retentionMonthly, "retention-monthly", 0, "keep the newest point of each of the last N months, per VM")
	fs.IntVar(&f.retentionYearly, "retention-yearly", 0, "keep the newest point of each of the last N years, per VM")
	fs.StringVar(&f.missed, "missed", "", "a schedule missed while the server was down: run-once (default: run once at start) or skip")
	fs.BoolVar(&f.gc, "gc", false, "maintenance job: delete chunks no restore point references (as holdfast gc)")
	fs.DurationVar(&f.gcGrace, "gc-grace", time.Hour, "maintenance job: keep unreferenced data younger than this")
	fs.BoolVar(&f.verify, "verify", false, "maintenance job: check every manifest and index and that every chunk exists (as holdfast verify)")
	fs.StringVar(&f.readData, "read-data", "", "maintenance job: verify also reads this share of the chunks per run, e.g. 10% (a different share each run: all over 10 runs)")
}

// apply sets the fields of the flags that changed.
func (f *policyFlags) apply(def *jobdef.Definition, changed func(string) bool) error {
	keeps := []struct {
		flag string
		n    int
		dst  *int
	}{{"retention-last", f.retentionLast, &def.Retention.Last}, {"retention-daily", f.retentionDaily, &def.Retention.Daily},
		{"retention-weekly", f.retentionWeekly, &def.Retention.Weekly}, {"retention-monthly", f.retentionMonthly, &def.Retention.Monthly},
		{"retention-yearly", f.retentionYearly, &def.Retention.Yearly}}
	for _, k := range keeps {
		if !changed(k.flag) {
			continue
		}
		if k.n < 0 {
			return usageError{fmt.Errorf("--%s must not be negative", k.flag)}
		}
		*k.dst = k.n
	}
	if changed("missed") {
		def.Missed = f.missed
	}
	return f.applyMaintenance(def, changed)
}

// applyMaintenance sets the maintenance work of the flags that changed.
func (f *policyFlags) applyMaintenance(def *jobdef.Definition, changed func(string) bool) error {
	if !changed("gc") && !changed("gc-grace") && !changed("verify") && !changed("read-data") {
		return nil
	}
	m := def.Maintenance
	if m == nil {
		m = &jobdef.Maintenance{}
		def.Maintenance = m
	}
	if changed("gc") {
		m.GC = f.gc
	}
	if changed("gc-grace") {
		if f.gcGrace < 0 {
			return usageError{errors.New("--gc-grace must not be negative")}
		}
		secs := int(f.gcGrace / time.Second)
		m.GCGraceSeconds = &secs
	}
	if changed("verify") {
		m.Verify = f.verify
	}
	if changed("read-data") {
		pct, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(f.readData), "%"))
		if err != nil || pct < 0 || pct > 100 {
			return usageError{fmt.Errorf("--read-data %q: want a share such as 10%%", f.readData)}
		}
		m.ReadDataPercent = pct
		if pct > 0 && !changed("verify") {
			m.Verify = true // reading data is part of verify
		}
	}
	return nil
}

// policyRows are job show's lines for retention, missed schedules and
// maintenance work.
func policyRows(d jobdef.Definition) [][]string {
	var rows [][]string
	if !d.Retention.Empty() {
		rows = append(rows, []string{"Retention:", d.Retention.String()})
	}
	if d.Maintenance != nil {
		rows = append(rows, []string{"Maintenance:", d.Maintenance.String()})
	}
	if d.Missed != "" {
		rows = append(rows, []string{"Missed runs:", d.Missed})
	}
	return rows
}

// runRows are job show's lines for the next and the last run.
func runRows(j apitypes.Job) [][]string {
	next := "-"
	switch {
	case j.NextRun != nil:
		next = fmtTime(j.NextRun)
	case !j.Enabled:
		next = "- (disabled)"
	case strings.HasPrefix(j.Schedule, "after "):
		next = "when job " + strings.TrimPrefix(j.Schedule, "after ") + " ends"
	}
	return [][]string{{"Next run:", next}, {"Last run:", lastRun(j)}}
}

// lastRun renders the newest session: "success (session 12, 2026-…)".
func lastRun(j apitypes.Job) string {
	r := j.LastRun
	if r == nil {
		return "-"
	}
	when := r.Ended
	if when == nil {
		when = &r.Started
	}
	return fmt.Sprintf("%s (session %d, %s)", r.State, r.Session, fmtTime(when))
}
