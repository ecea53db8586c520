package api

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// Runner starts the execution of a queued session. Start is called by
// POST /api/v1/jobs/{name}/run after the session has been created in state
// "queued"; it must return promptly (run the session in the background,
// without ctx, which ends with the request) and moves the session on through
// configdb itself. An error marks the session failed and the call fails 500.
type Runner interface {
	Start(ctx context.Context, session configdb.Session, job configdb.Job) error
}

// TaskBroker hands tasks to proxies and takes their reports (the
// orchestrator). proxy is the calling proxy's name, from its certificate.
type TaskBroker interface {
	NextTask(ctx context.Context, proxy string, wait time.Duration) (*taskproto.Spec, error)
	TaskProgress(ctx context.Context, proxy string, p taskproto.Progress) error
	TaskResult(ctx context.Context, proxy string, r taskproto.Result) error
	StartRestore(ctx context.Context, req taskproto.RestoreRequest) (configdb.Session, error)
	CancelSession(ctx context.Context, id int64) (configdb.Session, error)
	StartMount(ctx context.Context, req taskproto.MountRequest) (configdb.Session, error)
}

// Config holds the optional parts of a Server; the zero value is usable.
type Config struct {
	// Clock tells the time; nil: the real clock.
	Clock        clock.Clock
	Runner       Runner        // nil: run leaves sessions queued
	Logger       *slog.Logger  // nil: slog.Default()
	JoinTokenTTL time.Duration // default lifetime of agent join tokens; 0: 1 h
	CA           *pki.CA       // issues agent certificates; nil: agents cannot join (503)
	Tasks        TaskBroker    // nil: proxies get no work, restores are refused (503)
	// ServerFingerprint is the fingerprint of the certificate the server
	// presents to repository agents (pki.Fingerprint); heartbeat replies
	// to repository agents vouch for it. Empty: agents refuse the server.
	ServerFingerprint string
	// AuthFailures throttles failed authentication per client address.
	AuthFailures AuthFailureLimit
	// Logins rules console users' logins and sessions.
	Logins LoginPolicy
	// AgentTimeout is how long an agent may stay silent and still count as
	// online (the dashboard); 0 means 30 s.
	AgentTimeout time.Duration
	// VMs lists the VMs of sources (the orchestrator); nil: 503.
	VMs VMLister
	// Notifier sends test notifications; nil: the test route answers 503.
	Notifier NotificationTester
}

// Server is the REST API; it is an http.Handler.
type Server struct {
	store        *configdb.Store
	now          func() time.Time
	runner       Runner
	log          *slog.Logger
	joinTTL      time.Duration
	ca           *pki.CA
	tasks        TaskBroker
	selfFP       string
	agentTimeout time.Duration
	jobFacts     jobFacts  // the dashboard's parsed job definitions
	dash         dashCache // the dashboard's last answer
	fails        *failLimiter
	logins       LoginPolicy
	vms          VMLister
	notifier     NotificationTester
	dummy        dummyHash
	mux          *http.ServeMux
	routes       []Route
	metrics      *metrics
	openapi      []byte
}

// New returns the API served from store.
func New(store *configdb.Store, cfg Config) *Server {
	s := &Server{store: store, now: clock.Or(cfg.Clock).Now, runner: cfg.Runner, log: cfg.Logger, joinTTL: cfg.JoinTokenTTL, ca: cfg.CA,
		tasks: cfg.Tasks, selfFP: cfg.ServerFingerprint, logins: cfg.Logins.withDefaults(), vms: cfg.VMs, notifier: cfg.Notifier}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.fails = newFailLimiter(cfg.AuthFailures, s.now)
	if s.agentTimeout = cfg.AgentTimeout; s.agentTimeout <= 0 {
		s.agentTimeout = 30 * time.Second
	}
	if s.joinTTL <= 0 {
		s.joinTTL = time.Hour
	}
	s.metrics = newMetrics()
	s.routes = s.routeTable()
	s.openapi = mustOpenAPI(s.routes)
	s.mux = http.NewServeMux()
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+rt.Path, s.wrap(rt))
	}
	return s
}

// ServeHTTP serves the API. Requests no route matches get the JSON error
// body too: 404 not_found, or 405 method_not_allowed with Allow.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := s.mux.Handler(r); pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	probe := &headerOnly{header: http.Header{}}
	s.mux.ServeHTTP(probe, r) // learn 404 or 405 (and Allow) from the mux
	if probe.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", probe.header.Get("Allow"))
		writeJSON(w, probe.status, apitypes.ErrorBody{Error: r.Method + " not allowed on " + r.URL.Path, Code: "method_not_allowed"})
		return
	}
	writeJSON(w, http.StatusNotFound, apitypes.ErrorBody{Error: "no route " + r.URL.Path, Code: "not_found"})
}

// headerOnly is a ResponseWriter that keeps the header and status only.
type headerOnly struct {
	header http.Header
	status int
}

func (h *headerOnly) Header() http.Header         { return h.header }
func (h *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerOnly) WriteHeader(code int)        { h.status = code }

// Routes returns a copy of the route table, without handlers.
func (s *Server) Routes() []Route {
	out := make([]Route, len(s.routes))
	for i, rt := range s.routes {
		rt.handle = nil
		out[i] = rt
	}
	return out
}

func (s *Server) health(w http.ResponseWriter, r *http.Request, _ configdb.Principal) error {
	if err := s.store.DB().PingContext(r.Context()); err != nil {
		s.log.Error("health: database unreachable", "err", err)
		return newError(http.StatusServiceUnavailable, "unavailable", "database unreachable")
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "ok", "time": s.now().UTC(), "database": s.store.Backend(),
	})
	return nil
}

func (s *Server) serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ configdb.Principal) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(s.openapi)
	return err
}
