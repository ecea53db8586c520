package monitor

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// SlotSource tells how many task slots are busy (the orchestrator).
type SlotSource interface {
	SlotUsage() []scheduler.Usage
}

// StateOptions configure NewState.
type StateOptions struct {
	Store *configdb.Store
	Slots SlotSource // nil: no slot metrics
	// AgentTimeout is how long an agent may stay silent and still count as
	// up; 0 means 30 s (the server's default --agent-timeout).
	AgentTimeout time.Duration
	Clock        clock.Clock  // nil: the real clock
	Logger       *slog.Logger // nil: discard
	// ReadTimeout bounds the database reads of one scrape; 0 means 10 s.
	ReadTimeout time.Duration
}

// State reads the server's state at scrape time (a prometheus.Collector).
type State struct {
	o     StateOptions
	descs map[string]*prometheus.Desc
}

var stateMetrics = []struct{ name, help string }{
	{"holdfast_job_last_success_timestamp_seconds", "When the job's last successful session (success or warning) ended, as a Unix time."},
	{"holdfast_job_last_end_timestamp_seconds", "When the job's last session ended, as a Unix time."},
	{"holdfast_job_last_result", "1 for the result of the job's last ended session (label result)."},
	{"holdfast_vm_last_result", "1 for the result of the VM in its job's last ended session (label result)."},
	{"holdfast_vm_last_success_timestamp_seconds", "When the VM's newest restore point was created, as a Unix time."},
	{"holdfast_sessions_active", "Sessions queued or running, by kind and state."},
	{"holdfast_agent_up", "1 if the agent heartbeated within the agent timeout, else 0."},
	{"holdfast_agent_last_heartbeat_timestamp_seconds", "When the agent last heartbeated, as a Unix time."},
	{"holdfast_agent_slots", "Task slots of the agent, as the scheduler knows them."},
	{"holdfast_agent_slots_busy", "Task slots of the agent running a task now."},
	{"holdfast_repository_filesystem_size_bytes", "Size of the file system holding the repository, as its agent last reported."},
	{"holdfast_repository_filesystem_free_bytes", "Free space of the file system holding the repository, as its agent last reported."},
}

var stateLabels = map[string][]string{
	"holdfast_job_last_success_timestamp_seconds":     {"job"},
	"holdfast_job_last_end_timestamp_seconds":         {"job"},
	"holdfast_job_last_result":                        {"job", "result"},
	"holdfast_vm_last_result":                         {"job", "vm", "result"},
	"holdfast_vm_last_success_timestamp_seconds":      {"vm"},
	"holdfast_sessions_active":                        {"kind", "state"},
	"holdfast_agent_up":                               {"role", "agent"},
	"holdfast_agent_last_heartbeat_timestamp_seconds": {"role", "agent"},
	"holdfast_agent_slots":                            {"role", "agent"},
	"holdfast_agent_slots_busy":                       {"role", "agent"},
	"holdfast_repository_filesystem_size_bytes":       {"repository"},
	"holdfast_repository_filesystem_free_bytes":       {"repository"},
}

// NewState returns the scrape-time collector.
func NewState(o StateOptions) *State {
	if o.AgentTimeout <= 0 {
		o.AgentTimeout = 30 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Clock = clock.Or(o.Clock)
	s := &State{o: o, descs: map[string]*prometheus.Desc{}}
	for _, m := range stateMetrics {
		s.descs[m.name] = prometheus.NewDesc(m.name, m.help, stateLabels[m.name], nil)
	}
	return s
}

// Describe implements prometheus.Collector.
func (s *State) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range s.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it reads the state now. A
// failed database read fails the scrape (an invalid metric), so the
// target's up series shows it.
func (s *State) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), s.o.ReadTimeout)
	defer cancel()
	for _, collect := range []func(context.Context, chan<- prometheus.Metric) error{
		s.collectJobs, s.collectVMs, s.collectSessions, s.collectAgents,
	} {
		if err := collect(ctx, ch); err != nil {
			s.o.Logger.Warn("metrics: read the server state", "err", err)
			ch <- prometheus.NewInvalidMetric(s.descs["holdfast_sessions_active"], err)
		}
	}
	if s.o.Slots != nil {
		for _, u := range s.o.Slots.SlotUsage() {
			s.gauge(ch, "holdfast_agent_slots", float64(u.Slots), u.Role, u.ID)
			s.gauge(ch, "holdfast_agent_slots_busy", float64(u.Busy), u.Role, u.ID)
		}
	}
}

func (s *State) gauge(ch chan<- prometheus.Metric, name string, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(s.descs[name], prometheus.GaugeValue, v, labels...)
}

// lastResult is the part of a session's result document (the
// orchestrator's Result) the VM metrics read.
type lastResult struct {
	VMs []struct {
		Name   string `json:"name"`
		Status string `json:"status"`
	} `json:"vms"`
}

func (s *State) collectJobs(ctx context.Context, ch chan<- prometheus.Metric) error {
	jobs, err := s.o.Store.JobStatuses(ctx)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if !j.LastSuccess.IsZero() {
			s.gauge(ch, "holdfast_job_last_success_timestamp_seconds", unix(j.LastSuccess), j.Job)
		}
		s.gauge(ch, "holdfast_job_last_end_timestamp_seconds", unix(j.LastEnded), j.Job)
		s.gauge(ch, "holdfast_job_last_result", 1, j.Job, string(j.LastState))
		var res lastResult
		if len(j.LastResult) > 0 && json.Unmarshal(j.LastResult, &res) == nil {
			for _, vm := range res.VMs {
				s.gauge(ch, "holdfast_vm_last_result", 1, j.Job, vm.Name, vm.Status)
			}
		}
	}
	return nil
}

func (s *State) collectVMs(ctx context.Context, ch chan<- prometheus.Metric) error {
	points, err := s.o.Store.LastPoints(ctx)
	if err != nil {
		return err
	}
	for vm, t := range points {
		s.gauge(ch, "holdfast_vm_last_success_timestamp_seconds", unix(t), vm)
	}
	return nil
}

func (s *State) collectSessions(ctx context.Context, ch chan<- prometheus.Metric) error {
	counts, err := s.o.Store.ActiveSessions(ctx)
	if err != nil {
		return err
	}
	for _, c := range counts {
		s.gauge(ch, "holdfast_sessions_active", float64(c.N), c.Kind, string(c.State))
	}
	return nil
}

func (s *State) collectAgents(ctx context.Context, ch chan<- prometheus.Metric) error {
	agents, err := s.o.Store.ListAgents(ctx, "")
	if err != nil {
		return err
	}
	now := s.o.Clock.Now()
	for _, a := range agents {
		up := 0.0
		if !a.LastHeartbeat.IsZero() {
			s.gauge(ch, "holdfast_agent_last_heartbeat_timestamp_seconds", unix(a.LastHeartbeat), a.Role, a.Name)
			if now.Sub(a.LastHeartbeat) <= s.o.AgentTimeout {
				up = 1
			}
		}
		s.gauge(ch, "holdfast_agent_up", up, a.Role, a.Name)
		if st, ok := a.Storage(); ok && a.Role == configdb.AgentRepository && st.SizeBytes > 0 {
			s.gauge(ch, "holdfast_repository_filesystem_size_bytes", float64(st.SizeBytes), a.Name)
			s.gauge(ch, "holdfast_repository_filesystem_free_bytes", float64(st.FreeBytes), a.Name)
		}
	}
	return nil
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func seconds(start, end time.Time) float64 {
	if start.IsZero() || end.Before(start) {
		return 0
	}
	return end.Sub(start).Seconds()
}
