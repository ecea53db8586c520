package orchestrator

import (
	"context"
	"encoding/json"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// fireSchedules starts the enabled jobs whose schedule is due. A schedule
// first seen (server start, job created or changed) fires at its next time
// after now; if a firing fell between the job's last run (or last change)
// and now, the server was down then, and the job runs once at once unless
// its definition says "missed": "skip" (missedFiring).
func (or *Orchestrator) fireSchedules(ctx context.Context) error {
	jobs, err := or.store.ListJobs(ctx)
	if err != nil {
		return err
	}
	now := or.now()
	seen := map[string]bool{}
	for _, j := range jobs {
		if !j.Enabled || j.Schedule == "" {
			continue
		}
		sc, err := scheduler.ParseSchedule(j.Schedule, time.Local)
		if err != nil || sc.Kind() == scheduler.KindAfter {
			continue
		}
		key := j.Name + "\x00" + j.Schedule
		seen[key] = true
		or.mu.Lock()
		next, ok := or.nextFire[key]
		due := ok && !now.Before(next)
		or.mu.Unlock()
		if !ok && or.missedFiring(ctx, j, sc, now) {
			due = true
		}
		or.mu.Lock()
		if !ok || due {
			or.nextFire[key] = sc.Next(now)
		}
		or.mu.Unlock()
		if due {
			why := "schedule " + j.Schedule
			if !ok {
				why += " (missed while the server was down)"
			}
			or.runJob(ctx, j, why)
		}
	}
	or.mu.Lock()
	for k := range or.nextFire {
		if !seen[k] {
			delete(or.nextFire, k)
		}
	}
	or.mu.Unlock()
	return nil
}

// missedFiring reports whether j's schedule had a firing between the
// job's last run (or its last change, if later) and now that no session
// answered: the server was down then. Jobs whose definition says "missed":
// "skip" never catch up.
func (or *Orchestrator) missedFiring(ctx context.Context, j configdb.Job, sc *scheduler.Schedule, now time.Time) bool {
	if def, err := jobdef.Parse(j.Definition); err != nil || def.SkipsMissed() {
		return false
	}
	ref := j.Updated
	ss, err := or.store.ListSessions(ctx, configdb.SessionFilter{JobName: j.Name, Kind: j.Kind, Limit: 1})
	if err != nil {
		or.log.Warn("missed schedules", "job", j.Name, "err", err)
		return false
	}
	if len(ss) > 0 && ss[0].Started.After(ref) {
		ref = ss[0].Started
	}
	if ref.IsZero() {
		return false
	}
	next := sc.Next(ref)
	if next.IsZero() || next.After(now) {
		return false
	}
	or.log.Info("schedule missed while the server was down: running once", "job", j.Name, "missed", next)
	return true
}

// fireChained starts the enabled jobs scheduled "after job".
func (or *Orchestrator) fireChained(ctx context.Context, job string) {
	jobs, err := or.store.ListJobs(ctx)
	if err != nil {
		or.log.Warn("chained jobs", "after", job, "err", err)
		return
	}
	for _, j := range jobs {
		if !j.Enabled || j.Schedule == "" {
			continue
		}
		if sc, err := scheduler.ParseSchedule(j.Schedule, time.Local); err == nil && sc.Dependency() == job {
			or.runJob(ctx, j, "after job "+job)
		}
	}
}

// runJob starts a session of j on behalf of the scheduler, unless one is
// still running.
func (or *Orchestrator) runJob(ctx context.Context, j configdb.Job, why string) {
	or.mu.Lock()
	for _, rs := range or.sessions {
		if rs.job == j.Name && rs.kind == j.Kind {
			or.mu.Unlock()
			or.log.Warn("scheduled run skipped: the previous session is still running", "job", j.Name, "session", rs.id)
			return
		}
	}
	or.mu.Unlock()
	se, err := or.store.CreateSession(ctx, j.Name, j.Kind)
	if err != nil {
		or.log.Error("scheduled run", "job", j.Name, "err", err)
		return
	}
	_ = or.store.Audit(ctx, "scheduler", "job.run", j.Name, map[string]any{"session": se.ID, "trigger": why})
	or.log.Info("job started by its schedule", "job", j.Name, "session", se.ID, "trigger", why)
	if err := or.Start(ctx, se, j); err != nil {
		res, _ := json.Marshal(map[string]string{"error": err.Error()})
		_, _ = or.store.UpdateSession(ctx, se.ID, configdb.StateFailed, res)
		or.log.Error("scheduled run failed to start", "job", j.Name, "session", se.ID, "err", err)
	}
}
