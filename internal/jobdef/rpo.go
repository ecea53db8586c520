package jobdef

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/scheduler"
)

// RPO bounds: an explicit recovery point objective must lie within them.
const (
	MinRPO = time.Minute
	MaxRPO = 366 * 24 * time.Hour
)

// RPO sources, as EffectiveRPO reports them.
const (
	RPOExplicit = "explicit" // the definition's "rpo"
	RPOSchedule = "schedule" // derived from the job's schedule
)

// ParseRPO reads a definition's "rpo": a Go duration ("90m", "36h") or a
// whole number of days ("2d"), from MinRPO to MaxRPO. "" is no explicit
// RPO (0, nil).
func ParseRPO(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > int(MaxRPO/(24*time.Hour)) {
			return 0, fmt.Errorf("%q: want a duration such as 36h, 90m or 2d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q: want a duration such as 36h, 90m or 2d", s)
		}
	}
	if d < MinRPO || d > MaxRPO {
		return 0, fmt.Errorf("%q: want from %v to %d days", s, MinRPO, MaxRPO/(24*time.Hour))
	}
	return d, nil
}

// checkRPO is the "rpo" field's check.
func (d Definition) checkRPO() error {
	if _, err := ParseRPO(d.RPO); err != nil {
		return wrapField("definition.rpo", err)
	}
	return nil
}

// rpoHorizon bounds the runs DefaultRPO looks at: a schedule that runs
// less often than that (monthly, yearly) is measured by its first gap.
const (
	rpoHorizon = 35 * 24 * time.Hour
	rpoRuns    = 64
	maxChain   = 16 // "after" links DefaultRPO follows
)

// DefaultRPO derives a job's RPO from its schedule: the longest gap
// between two consecutive scheduled runs within the next 35 days (at most
// 64 runs after now), plus half of that gap (at least one hour) for the run
// itself to finish. Daily: 36 h; hourly: 2 h; every 15 minutes: 1 h 15 m;
// weekly: 10.5 days. A job chained with "after JOB" takes the RPO of the
// job it follows (schedules maps job names to their schedules). An
// on-demand job ("") — or a chain that ends in one, in a cycle, or in an
// unknown job — has no RPO: 0.
func DefaultRPO(schedule string, schedules map[string]string, now time.Time) time.Duration {
	for range maxChain {
		if schedule == "" {
			return 0
		}
		s, err := scheduler.ParseSchedule(schedule, time.UTC)
		if err != nil {
			return 0
		}
		if s.Kind() == scheduler.KindAfter {
			next, ok := schedules[s.Dependency()]
			if !ok {
				return 0
			}
			schedule = next
			continue
		}
		gap := longestGap(s, now)
		if gap <= 0 {
			return 0
		}
		return gap + max(gap/2, time.Hour)
	}
	return 0
}

// longestGap is the longest time between consecutive runs of s after now
// (see DefaultRPO); 0 if s does not fire twice.
func longestGap(s *scheduler.Schedule, now time.Time) time.Duration {
	prev := s.Next(now)
	if prev.IsZero() {
		return 0
	}
	var gap time.Duration
	for range rpoRuns {
		next := s.Next(prev)
		if next.IsZero() {
			break
		}
		gap = max(gap, next.Sub(prev))
		if next.Sub(now) > rpoHorizon {
			break
		}
		prev = next
	}
	return gap
}

// EffectiveRPO is a job's RPO: the definition's "rpo" if given
// (RPOExplicit), else DefaultRPO of its schedule (RPOSchedule); 0 and ""
// when it has none.
func EffectiveRPO(d Definition, schedule string, schedules map[string]string, now time.Time) (time.Duration, string) {
	if rpo, err := ParseRPO(d.RPO); err == nil && rpo > 0 {
		return rpo, RPOExplicit
	}
	if rpo := DefaultRPO(schedule, schedules, now); rpo > 0 {
		return rpo, RPOSchedule
	}
	return 0, ""
}
