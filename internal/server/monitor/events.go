package monitor

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// durationBuckets span a few seconds to a day, in seconds.
var durationBuckets = []float64{1, 5, 15, 30, 60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400}

// Events counts and times ended sessions and tasks (configdb.Observer).
type Events struct {
	sessions *prometheus.HistogramVec
	tasks    *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
}

var _ configdb.Observer = (*Events)(nil)

// NewEvents returns the event metrics; register them with Register.
func NewEvents() *Events {
	return &Events{
		sessions: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "holdfast_session_duration_seconds",
			Help:    "Duration of ended sessions by kind (backup, restore, instant-recovery) and result (success, warning, failed, cancelled); _count counts them.",
			Buckets: durationBuckets,
		}, []string{"kind", "result"}),
		tasks: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "holdfast_task_duration_seconds",
			Help:    "Duration of ended task attempts (one VM disk each) by result; _count counts them.",
			Buckets: durationBuckets,
		}, []string{"result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "holdfast_task_bytes_total",
			Help: "Bytes of ended task attempts by repository and stage: read (from the source), new (sent to the repository), stored (written as new chunks).",
		}, []string{"repository", "stage"}),
	}
}

// Describe implements prometheus.Collector.
func (e *Events) Describe(ch chan<- *prometheus.Desc) {
	e.sessions.Describe(ch)
	e.tasks.Describe(ch)
	e.bytes.Describe(ch)
}

// Collect implements prometheus.Collector.
func (e *Events) Collect(ch chan<- prometheus.Metric) {
	e.sessions.Collect(ch)
	e.tasks.Collect(ch)
	e.bytes.Collect(ch)
}

// SessionEnded observes an ended session.
func (e *Events) SessionEnded(s configdb.Session) {
	e.sessions.WithLabelValues(s.Kind, string(s.State)).Observe(seconds(s.Started, s.Ended))
}

// TaskEnded observes an ended task attempt.
func (e *Events) TaskEnded(t configdb.Task) {
	start := t.Started
	if start.IsZero() {
		start = t.Queued
	}
	e.tasks.WithLabelValues(string(t.State)).Observe(seconds(start, t.Ended))
	e.bytes.WithLabelValues(t.Repository, "read").Add(float64(t.BytesRead))
	e.bytes.WithLabelValues(t.Repository, "new").Add(float64(t.BytesTransferred))
	e.bytes.WithLabelValues(t.Repository, "stored").Add(float64(t.BytesWritten))
}
