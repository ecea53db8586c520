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
