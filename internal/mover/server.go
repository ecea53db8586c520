package mover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/repo"
)

// ServerOptions tune a Server.
type ServerOptions struct {
	// SessionTTL is how long a session may go without requests before it
	// expires and its lock is released; 0 means 5 minutes. Clients keep
	// sessions alive every minute, so it must exceed that in production.
	SessionTTL time.Duration
	// MaxSessions bounds open sessions (committed ones count until they
	// expire); 0 means 256.
	MaxSessions int
	// MaxUploads bounds chunk uploads verified and stored at once (CPU:
	// decrypt, decompress, hash); 0 means 4 × GOMAXPROCS. Bodies are read
	// before, so memory is bounded by the concurrent streams instead
	// (NewHTTPServer allows 64 per connection).
	MaxUploads int
	// MaxIndexBytes bounds an uploaded plain index; 0 means DefaultMaxIndexBytes.
	MaxIndexBytes int64
	// Authorize, if set, is asked before any request on a repository and
	// says what its client may do there (see Access); an error is answered
	// 403. Nil grants every client DefaultSessionsPerClient sessions and
	// ListPoints.
	Authorize func(r *http.Request, repoName string) (Access, error)
	// AuthorizeForget, if set, must also allow a request that forgets a
	// point (retention run by the backup server); nil refuses them all.
	AuthorizeForget func(r *http.Request) error
	// AuthorizeMaintain, if set, must also allow a request that runs gc or
	// verify (maintenance jobs run by the backup server); nil refuses them.
	AuthorizeMaintain func(r *http.Request) error
	Logger            *slog.Logger // nil: discard
	// Clock tells the time; nil: the real clock.
	Clock clock.Clock
}

// Server serves repositories over the data mover protocol. It is an
// http.Handler; run it behind an http.Server with TLS that requires and
// verifies client certificates (see NewHTTPServer).
type Server struct {
	o       ServerOptions
	log     *slog.Logger
	repos   map[string]*served
	mux     *http.ServeMux
	uploads chan struct{}

	mu       sync.Mutex
	sessions map[string]*session
	owners   map[string]*session // "repo/point" → the session uploading its indexes
	closed   bool
	started  atomic.Int64 // sessions started, for tests and logs
}

// served is one repository of the server.
type served struct {
	name string
	r    *repo.Repository
}

// NewServer serves the given repositories, by name. The repositories are
// opened (with their passwords) by the caller and stay open until after
// Close.
func NewServer(repos map[string]*repo.Repository, o ServerOptions) (*Server, error) {
	if o.SessionTTL <= 0 {
		o.SessionTTL = 5 * time.Minute
	}
	o.Clock = clock.Or(o.Clock)
	if o.MaxSessions <= 0 {
		o.MaxSessions = 256
	}
	if o.MaxUploads <= 0 {
		o.MaxUploads = 4 * runtime.GOMAXPROCS(0)
	}
	if o.MaxIndexBytes <= 0 {
		o.MaxIndexBytes = DefaultMaxIndexBytes
	}
	s := &Server{o: o, log: o.Logger, repos: make(map[string]*served), sessions: make(map[string]*session),
		owners: make(map[string]*session), uploads: make(chan struct{}, o.MaxUploads)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for name, r := range repos {
		if !ValidRepoName(name) || r == nil {
			return nil, fmt.Errorf("mover: invalid repository name %q", name)
		}
		s.repos[name] = &served{name: name, r: r}
	}
	s.mux = s.routes()
	return s, nil
}

func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	p := APIPrefix + "{repo}/"
	m.HandleFunc("GET "+p+"config", s.wrap(s.getConfig))
	m.HandleFunc("GET "+p+"keys", s.wrap(s.getKeys))
	m.HandleFunc("GET "+p+"points", s.wrap(s.getPoints))
	m.HandleFunc("GET "+p+"points/{point}/disks/{disk}/index", s.wrap(s.getIndex))
	m.HandleFunc("GET "+p+"chunks/{id}", s.wrap(s.getChunk))
	m.HandleFunc("DELETE "+p+"points/{point}", s.wrap(s.forgetPoint))
	m.HandleFunc("POST "+p+"maintenance", s.wrap(s.maintain))
	m.HandleFunc("PUT "+p+"points/{point}/holds/{holder}", s.wrap(s.putHold))
	m.HandleFunc("DELETE "+p+"points/{point}/holds/{holder}", s.wrap(s.releaseHold))
	m.HandleFunc("PUT "+p+"points/{point}/scans/{engine}", s.wrap(s.putScan))
	m.HandleFunc("POST "+p+"sessions", s.wrap(s.startSession))
	m.HandleFunc("DELETE "+p+"sessions/{sid}", s.wrapSession(accessOwner, s.abort))
	m.HandleFunc("POST "+p+"sessions/{sid}/keepalive", s.wrapSession(accessUse, s.keepalive))
	m.HandleFunc("POST "+p+"sessions/{sid}/has", s.wrapSession(accessUse, s.has))
	m.HandleFunc("PUT "+p+"sessions/{sid}/chunks/{id}", s.wrapSession(accessUse, s.putChunk))
	m.HandleFunc("PUT "+p+"sessions/{sid}/points/{point}/disks/{disk}/index", s.wrapSession(accessUse, s.putIndex))
	m.HandleFunc("POST "+p+"sessions/{sid}/commit", s.wrapSession(accessOwner, s.commit))
	return m
}

// ServeHTTP implements http.Handler. Unclean paths are refused rather than
// redirected (the mux's default), so a request never moves elsewhere.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p := r.URL.Path; p == "" || path.Clean(p) != p {
		writeJSON(w, http.StatusBadRequest, errorResponse{Error: "unclean request path", Code: codeBadRequest})
		return
	}
	s.mux.ServeHTTP(w, r)
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, rp *served) error
type sessionFunc func(w http.ResponseWriter, r *http.Request, sess *session) error

// wrap resolves the repository, authorizes and turns errors into replies.
func (s *Server) wrap(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := s.serve(w, r, fn); err != nil {
			s.writeError(w, r, err)
		}
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, fn handlerFunc) error {
	name := r.PathValue("repo")
	rp := s.repos[name]
	if rp == nil {
		return newAPIError(http.StatusNotFound, codeRepoNotFound, "repository %q not served", name)
	}
	r, err := s.authorize(r, name)
	if err != nil {
		return err
	}
	return fn(w, r, rp)
}

// wrapSession additionally resolves the session, checks that the peer may
// use it as need says, and keeps it busy (not expiring) while the request
// runs.
func (s *Server) wrapSession(need access, fn sessionFunc) http.HandlerFunc {
	return s.wrap(func(w http.ResponseWriter, r *http.Request, rp *served) error {
		sess, done, err := s.acquire(rp, r.PathValue("sid"), peerID(r), need)
		if err != nil {
			return err
		}
		defer done()
		return fn(w, r, sess)
	})
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := classify(err)
	if status >= 500 {
		s.log.Warn("mover request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, errorResponse{Error: err.Error(), Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", ctypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeBinary(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", ctypeBinary)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// readBody reads a whole request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, newAPIError(http.StatusRequestEntityTooLarge, codeTooLarge,
			"body of %d bytes exceeds the limit of %d", r.ContentLength, limit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength) + bytes.MinRead) // ReadFrom wants MinRead free at EOF: no regrowth
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, newAPIError(http.StatusRequestEntityTooLarge, codeTooLarge, "body exceeds the limit of %d bytes", limit)
	}
	if err != nil {
		return nil, badRequest(fmt.Errorf("read body: %w", err))
	}
	return buf.Bytes(), nil
}

// readPooled reads a body of known length into a pooled buffer of rr
// (give it back with rr.Recycle); a body without a length goes through
// readBody.
func readPooled(w http.ResponseWriter, r *http.Request, rr *repo.Repository, limit int64) ([]byte, error) {
	if r.ContentLength <= 0 || r.ContentLength > limit {
		return readBody(w, r, limit)
	}
	buf := rr.Buffer(int(r.ContentLength))
	if _, err := io.ReadFull(r.Body, buf); err != nil {
		rr.Recycle(buf)
		return nil, badRequest(fmt.Errorf("read body: %w", err))
	}
	var one [1]byte
	if n, _ := r.Body.Read(one[:]); n > 0 {
		rr.Recycle(buf)
		return nil, badRequest(errors.New("body longer than its Content-Length"))
	}
	return buf, nil
}
