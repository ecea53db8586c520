package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// metrics are the API's Prometheus metrics, in a registry of each Server's
// own (so several servers, e.g. in tests, do not collide).
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	handler  http.Handler
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "holdfast_api_requests_total",
			Help: "API requests by route and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "holdfast_api_request_duration_seconds",
			Help:    "API request latency by route (the long-poll tasks/next route left out).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"method", "route"}),
	}
	m.reg.MustRegister(m.requests, m.duration)
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	return m
}

// longPoll reports whether a route waits for work by design (a proxy's
// tasks/next holds the request open up to its wait time): counted, but kept
// out of the latency histogram, where it would read as slow requests.
func longPoll(path string) bool { return path == "/api/v1/agents/tasks/next" }

func (m *metrics) observe(rt Route, code int, d time.Duration) {
	m.requests.WithLabelValues(rt.Method, rt.Path, strconv.Itoa(code)).Inc()
	if !longPoll(rt.Path) {
		m.duration.WithLabelValues(rt.Method, rt.Path).Observe(d.Seconds())
	}
}

// Registry is the Prometheus registry behind GET /metrics, for the server
// to add its own collectors (scheduler, sessions …) to.
func (s *Server) Registry() *prometheus.Registry { return s.metrics.reg }

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	s.metrics.handler.ServeHTTP(w, r)
	return nil
}
