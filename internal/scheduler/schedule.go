package scheduler

import (
	"fmt"
	"strings"
	"time"
)

// Kind is the form of a schedule.
type Kind int

// Schedule kinds.
const (
	KindCron  Kind = iota // cron expression or macro
	KindDaily             // "daily HH:MM"
	KindAfter             // "after JOB": chained to another job
)

func (k Kind) String() string {
	switch k {
	case KindCron:
		return "cron"
	case KindDaily:
		return "daily"
	case KindAfter:
		return "after"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Schedule says when a job starts. It is immutable and safe for concurrent
// use.
type Schedule struct {
	spec  string
	kind  Kind
	loc   *time.Location
	cron  *Cron  // KindCron, KindDaily
	after string // KindAfter
}

// ParseSchedule parses "daily [at] HH:MM", "after JOB", a cron macro or a
// five-field cron expression. Times are wall-clock times in loc (UTC if
// nil).
func ParseSchedule(spec string, loc *time.Location) (*Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	s := &Schedule{spec: strings.TrimSpace(spec), loc: loc}
	words := strings.Fields(s.spec)
	if len(words) == 0 {
		return nil, fmt.Errorf("schedule: empty")
	}
	var err error
	switch strings.ToLower(words[0]) {
	case "after":
		s.kind = KindAfter
		s.after = strings.TrimSpace(s.spec[len(words[0]):])
		if s.after == "" {
			return nil, fmt.Errorf("schedule %q: after which job?", spec)
		}
	case "daily":
		s.kind = KindDaily
		s.cron, err = parseDaily(spec, words[1:])
	default:
		s.kind = KindCron
		s.cron, err = ParseCron(s.spec)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// parseDaily reads the words after "daily": "[at] HH:MM".
func parseDaily(spec string, words []string) (*Cron, error) {
	if len(words) == 2 && strings.EqualFold(words[0], "at") {
		words = words[1:]
	}
	if len(words) != 1 {
		return nil, fmt.Errorf("schedule %q: want \"daily HH:MM\"", spec)
	}
	hh, mm, ok := strings.Cut(words[0], ":")
	h, errH := smallNumber(hh, 2)
	m, errM := smallNumber(mm, 2)
	if !ok || errH != nil || errM != nil || len(mm) != 2 || h > 23 || m > 59 {
		return nil, fmt.Errorf("schedule %q: bad time %q, want HH:MM (00:00-23:59)", spec, words[0])
	}
	c, err := ParseCron(fmt.Sprintf("%d %d * * *", m, h))
	if err != nil {
		return nil, err
	}
	c.expr = spec
	return c, nil
}

// String returns the schedule as given.
func (s *Schedule) String() string { return s.spec }

// Kind returns the schedule's form.
func (s *Schedule) Kind() Kind { return s.kind }

// Location returns the time zone of the schedule's wall-clock times.
func (s *Schedule) Location() *time.Location { return s.loc }

// Dependency returns the job a chained schedule follows ("" otherwise):
// the caller starts this schedule's job when that job finishes.
func (s *Schedule) Dependency() string { return s.after }

// Next returns the first firing strictly after after, or the zero time for
// a chained schedule (and for none within 400 years).
func (s *Schedule) Next(after time.Time) time.Time {
	if s.cron == nil {
		return time.Time{}
	}
	return s.cron.Next(after, s.loc)
}

// CheckChains reports a cycle among chained schedules (job → schedule),
// such as "a after b" with "b after a", which would never start or start
// each other forever. Dependencies on jobs not in the map are allowed.
func CheckChains(jobs map[string]*Schedule) error {
	const (
		unvisited = iota
		visiting
		done
	)
	mark := make(map[string]int, len(jobs))
	for _, start := range sortedKeys(jobs) {
		var path []string
		for job := start; job != ""; {
			switch mark[job] {
			case done:
				job = ""
				continue
			case visiting:
				return fmt.Errorf("schedule: jobs chain in a cycle: %s", cycleText(path, job))
			}
			mark[job] = visiting
			path = append(path, job)
			next := ""
			if s := jobs[job]; s != nil {
				next = s.Dependency()
			}
			job = next
		}
		for _, j := range path {
			mark[j] = done
		}
	}
	return nil
}

// cycleText renders the cycle that closes at job: "b → c → b".
func cycleText(path []string, job string) string {
	for i, j := range path {
		if j == job {
			return strings.Join(append(path[i:], job), " → ")
		}
	}
	return job
}
