package api

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// dashboardWindow is how far back the dashboard counts sessions;
// growthWindow how far back it measures repository growth.
const (
	dashboardWindow = 24 * time.Hour
	growthWindow    = 7 * 24 * time.Hour
	dashboardActive = 100 // running sessions shown
)

// dashboardTTL is how long an answer of GET /api/v1/dashboard is served
// again: the consoles that poll it share one computation per second.
const dashboardTTL = time.Second

// dashCache holds the last dashboard answer, encoded. Its mutex is held
// while an answer is computed, so concurrent pollers wait for that one
// instead of computing their own.
type dashCache struct {
	mu   sync.Mutex
	at   time.Time // the server's now when body was computed
	body []byte
}

// dashboard answers GET /api/v1/dashboard from a handful of indexed
// queries (configdb/dashboard.go), each bounded by what it shows; an
// answer is at most dashboardTTL old.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	c := &s.dash
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.now().UTC()
	if c.body == nil || now.Sub(c.at) >= dashboardTTL || now.Before(c.at) {
		d, err := s.computeDashboard(r.Context(), now)
		if err != nil {
			return err
		}
		body, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return err
		}
		c.at, c.body = now, append(body, '\n')
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(c.body)))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(c.body)
	return err
}

// computeDashboard reads the dashboard as of now.
func (s *Server) computeDashboard(ctx context.Context, now time.Time) (apitypes.Dashboard, error) {
	d := apitypes.Dashboard{Time: now}
	var err error
	if d.Sessions, err = s.dashboardSessions(ctx, now); err != nil {
		return d, err
	}
	if d.RPO, err = s.dashboardRPO(ctx, now); err != nil {
		return d, err
	}
	agents, err := s.store.ListAgents(ctx, "")
	if err != nil {
		return d, err
	}
	d.Agents = s.agentCounts(agents, now)
	if d.Repositories, err = s.repositoryCapacity(ctx, agents, now); err != nil {
		return d, err
	}
	d.Running, err = s.runningSessions(ctx, now)
	return d, err
}

// allStates are the session states, in the order the dashboard lists them.
var allStates = []configdb.State{configdb.StateQueued, configdb.StateRunning, configdb.StateSuccess,
	configdb.StateWarning, configdb.StateFailed, configdb.StateCancelled}

// dashboardSessions counts the sessions started from now−24 h to now, in
// all and per UTC clock hour.
func (s *Server) dashboardSessions(ctx context.Context, now time.Time) (apitypes.DashboardSessions, error) {
	since := now.Add(-dashboardWindow)
	out := apitypes.DashboardSessions{Since: since, ByState: map[string]int{}}
	for _, st := range allStates {
		out.ByState[string(st)] = 0
	}
	first := since.Truncate(time.Hour)
	for h := first; !h.After(now); h = h.Add(time.Hour) {
		out.Hours = append(out.Hours, apitypes.HourBucket{Start: h, ByState: map[string]int{}})
	}
	starts, err := s.store.SessionStarts(ctx, since, now)
	if err != nil {
		return out, err
	}
	for _, st := range starts {
		out.ByState[string(st.State)]++
		if i := int(st.Started.Sub(first) / time.Hour); i >= 0 && i < len(out.Hours) {
			out.Hours[i].ByState[string(st.State)]++
		}
	}
	return out, nil
}

// dashboardRPO lists the VMs of backup jobs with an RPO whose newest good
// point is older than it (or missing): the VMs a job lists, and those it
// made points of (selected from a source).
func (s *Server) dashboardRPO(ctx context.Context, now time.Time) (apitypes.DashboardRPO, error) {
	out := apitypes.DashboardRPO{Violations: []apitypes.RPOViolation{}}
	jobs, err := s.store.ListJobs(ctx)
	if err != nil {
		return out, err
	}
	points, err := s.store.NewestGoodPoints(ctx)
	if err != nil {
		return out, err
	}
	newest := map[string]map[string]time.Time{} // job → VM → newest good point
	for _, p := range points {
		if newest[p.Job] == nil {
			newest[p.Job] = map[string]time.Time{}
		}
		newest[p.Job][p.VM] = p.Created
	}
	schedules := make(map[string]string, len(jobs))
	for _, j := range jobs {
		schedules[j.Name] = j.Schedule
	}
	facts := s.jobFacts.facts(jobs)
	for i, j := range jobs {
		if j.Kind != jobdef.KindBackup || !facts[i].ok {
			continue // a stored definition this version cannot read has no RPO to check
		}
		def := facts[i].def
		rpo, src := jobdef.EffectiveRPO(def, j.Schedule, schedules, now)
		if rpo <= 0 {
			continue
		}
		out.JobsChecked++
		vms := newest[j.Name]
		for _, vm := range def.VMs {
			if _, ok := vms[vm.Name]; !ok {
				if vms == nil {
					vms = map[string]time.Time{}
				}
				vms[vm.Name] = time.Time{}
			}
		}
		for vm, last := range vms {
			out.VMsChecked++
			if !last.IsZero() && now.Sub(last) <= rpo {
				continue
			}
			v := apitypes.RPOViolation{VM: vm, Job: j.Name, JobEnabled: j.Enabled, RPOSeconds: int64(rpo / time.Second), RPOSource: src}
			if !last.IsZero() {
				v.LastPoint, v.AgeSeconds = optTime(last), int64(now.Sub(last)/time.Second)
			}
			out.Violations = append(out.Violations, v)
		}
	}
	sort.Slice(out.Violations, func(a, b int) bool { return overdue(out.Violations[a], out.Violations[b]) })
	return out, nil
}

// overdue orders violations: never backed up first, then the most overdue
// (age beyond the RPO), then by job and VM.
func overdue(a, b apitypes.RPOViolation) bool {
	if (a.LastPoint == nil) != (b.LastPoint == nil) {
		return a.LastPoint == nil
	}
	if da, db := a.AgeSeconds-a.RPOSeconds, b.AgeSeconds-b.RPOSeconds; da != db {
		return da > db
	}
	if a.Job != b.Job {
		return a.Job < b.Job
	}
	return a.VM < b.VM
}

// online reports whether the agent heartbeated within the agent timeout.
func (s *Server) online(a configdb.Agent, now time.Time) bool {
	return !a.LastHeartbeat.IsZero() && now.Sub(a.LastHeartbeat) <= s.agentTimeout
}

// agentCounts counts agents online and offline by role.
func (s *Server) agentCounts(agents []configdb.Agent, now time.Time) []apitypes.AgentCount {
	out := []apitypes.AgentCount{{Role: configdb.AgentProxy, OfflineNames: []string{}},
		{Role: configdb.AgentRepository, OfflineNames: []string{}}}
	for _, a := range agents {
		c := &out[0]
		if a.Role == configdb.AgentRepository {
			c = &out[1]
		}
		if s.online(a, now) {
			c.Online++
		} else {
			c.Offline++
			c.OfflineNames = append(c.OfflineNames, a.Name)
		}
	}
	return out
}

// repositoryCapacity reports each repository agent's capacity as its
// heartbeats announce it, with the growth of its use from the daily
// samples of the last 7 days.
func (s *Server) repositoryCapacity(ctx context.Context, agents []configdb.Agent, now time.Time) ([]apitypes.RepositoryCapacity, error) {
	samples, err := s.store.RepositorySamples(ctx, now.Add(-growthWindow))
	if err != nil {
		return nil, err
	}
	byRepo := map[string][]configdb.RepositorySample{}
	for _, sm := range samples {
		byRepo[sm.Repository] = append(byRepo[sm.Repository], sm)
	}
	out := []apitypes.RepositoryCapacity{}
	for _, a := range agents {
		if a.Role != configdb.AgentRepository {
			continue
		}
		rc := apitypes.RepositoryCapacity{Name: a.Name, Online: s.online(a, now), Daily: []apitypes.CapacitySample{}}
		st, ok := a.Storage()
		rc.Error = st.Error
		if ok && st.SizeBytes > 0 {
			rc.Known, rc.SizeBytes, rc.FreeBytes, rc.UsedBytes = true, st.SizeBytes, st.FreeBytes, st.SizeBytes-st.FreeBytes
		}
		for _, sm := range byRepo[a.Name] {
			rc.Daily = append(rc.Daily, apitypes.CapacitySample{Day: sm.Day, UsedBytes: sm.SizeBytes - sm.FreeBytes, FreeBytes: sm.FreeBytes})
		}
		if rc.Known && len(rc.Daily) >= 2 {
			rc.Growth7dBytes, rc.GrowthSince = rc.UsedBytes-rc.Daily[0].UsedBytes, rc.Daily[0].Day
		}
		out = append(out, rc)
	}
	return out, nil
}

// runningSessions are the queued and running sessions with their tasks,
// as GET /api/v1/sessions/{id} shows each.
func (s *Server) runningSessions(ctx context.Context, now time.Time) ([]apitypes.Session, error) {
	sessions, tasks, err := s.store.ActiveSessionTasks(ctx, dashboardActive)
	if err != nil {
		return nil, err
	}
	out := make([]apitypes.Session, 0, len(sessions))
	for _, se := range sessions {
		out = append(out, viewSessionTasks(se, tasks[se.ID], now))
	}
	return out, nil
}
