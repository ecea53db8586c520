package jobdef

import (
	"time"

	"github.com/holdfast-backup/holdfast/internal/scheduler"
)

// ValidateSchedule checks a job's schedule ("": run on demand only): a
// cron expression or macro, "daily [at] HH:MM" or "after JOB" (see
// internal/scheduler).
func ValidateSchedule(spec string) error {
	if spec == "" {
		return nil
	}
	if _, err := scheduler.ParseSchedule(spec, time.UTC); err != nil {
		return wrapField("schedule", err)
	}
	return nil
}

// NextRun is when a schedule fires next after now, in the server's time
// zone (as the orchestrator reads schedules); zero for "" (on demand),
// an "after JOB" schedule (it fires when that job's session ends) and a
// schedule that does not parse.
func NextRun(spec string, now time.Time) time.Time {
	if spec == "" {
		return time.Time{}
	}
	s, err := scheduler.ParseSchedule(spec, time.Local)
	if err != nil || s.Kind() == scheduler.KindAfter {
		return time.Time{}
	}
	return s.Next(now)
}

// CheckChains refuses "after" schedules that chain jobs in a cycle;
// schedules maps each job's name to its schedule ("": none). Schedules
// that do not parse are left out (ValidateSchedule refuses them).
func CheckChains(schedules map[string]string) error {
	parsed := make(map[string]*scheduler.Schedule, len(schedules))
	for name, spec := range schedules {
		if spec == "" {
			continue
		}
		if s, err := scheduler.ParseSchedule(spec, time.UTC); err == nil {
			parsed[name] = s
		}
	}
	if err := scheduler.CheckChains(parsed); err != nil {
		return wrapField("schedule", err)
	}
	return nil
}

// NextRuns is the next n times a schedule fires after now, in the server's
// time zone, and the job an "after JOB" schedule follows ("" otherwise):
// what the console shows before a job is saved. It refuses a schedule
// ValidateSchedule refuses; "" (on demand) and "after JOB" have no times.
func NextRuns(spec string, now time.Time, n int) ([]time.Time, string, error) {
	if err := ValidateSchedule(spec); err != nil || spec == "" {
		return nil, "", err
	}
	s, err := scheduler.ParseSchedule(spec, time.Local)
	if err != nil {
		return nil, "", wrapField("schedule", err)
	}
	if s.Kind() == scheduler.KindAfter {
		return nil, s.Dependency(), nil
	}
	var out []time.Time
	for t := now; len(out) < n; {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out, "", nil
}
