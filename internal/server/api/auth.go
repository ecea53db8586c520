package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authorize authenticates r and checks that its role may use rt.
func (s *Server) authorize(r *http.Request, rt Route) (configdb.Principal, error) {
	switch rt.Perm {
	case PermPublic, PermJoinToken, PermAgent, PermLogin: // the handler authenticates
		return configdb.Principal{}, nil
	}
	p, err := s.principal(r)
	if err != nil {
		return configdb.Principal{}, err
	}
	if rt.Perm == PermSession && p.SessionID == 0 {
		return p, &apitypes.Error{Status: http.StatusForbidden, Code: "forbidden",
			Message: rt.Method + " " + rt.Path + " is for a console user's login session, not an API token"}
	}
	if !rt.Perm.Allows(p.Role) {
		return p, &apitypes.Error{Status: http.StatusForbidden, Code: "forbidden",
			Message: "role " + string(p.Role) + " may not " + rt.Method + " " + rt.Path}
	}
	return p, nil
}

// principal authenticates r by its bearer token or, without one, by its
// login session cookie (sessionauth.go).
func (s *Server) principal(r *http.Request) (configdb.Principal, error) {
	tok, ok := bearer(r)
	if !ok {
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			return s.sessionPrincipal(r, c.Value)
		}
		return configdb.Principal{}, errUnauthenticated("missing bearer token")
	}
	p, err := s.store.Authenticate(r.Context(), tok)
	if errors.Is(err, configdb.ErrUnauthorized) || errors.Is(err, configdb.ErrNotFound) {
		return configdb.Principal{}, errUnauthenticated("invalid token")
	}
	return p, err
}

// wrap turns a route into an http.Handler: metrics, authentication,
// permission check, the handler, and error responses.
func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		sw := &statusWriter{ResponseWriter: w}
		if rt.Body {
			r.Body = http.MaxBytesReader(sw, r.Body, maxBody)
		}
		err := s.throttled(sw, r, rt)
		var p configdb.Principal
		if err == nil {
			if p, err = s.authorize(r, rt); err == nil {
				err = rt.handle(sw, r, p)
			}
			s.countFailure(r, rt, err)
		}
		if err != nil {
			s.writeError(sw, r, err)
		}
		s.metrics.observe(rt, sw.code(), s.now().Sub(start))
	})
}

// guessable reports whether rt authenticates with a secret a client could
// guess (an API or join token, a login session, a user's password); agent certificates are verified in the
// TLS handshake and cannot be guessed, so a revoked agent's retries do not
// block its address.
func guessable(rt Route) bool { return rt.Perm != PermPublic && rt.Perm != PermAgent }

// throttled refuses a request that needs a token from a source that failed
// to authenticate too often (AuthFailureLimit).
func (s *Server) throttled(w http.ResponseWriter, r *http.Request, rt Route) error {
	if !guessable(rt) {
		return nil
	}
	if d := s.fails.wait(source(r)); d > 0 {
		w.Header().Set("Retry-After", retryAfter(d))
		return errTooManyFailures()
	}
	return nil
}

// countFailure records a request that failed to authenticate with a token
// (401: a bad API or join token).
func (s *Server) countFailure(r *http.Request, rt Route, err error) {
	if err == nil || !guessable(rt) || classify(err).Status != http.StatusUnauthorized {
		return
	}
	s.failedFrom(r)
}

// failedFrom counts a failed authentication against r's source address.
func (s *Server) failedFrom(r *http.Request) {
	if src := source(r); s.fails.fail(src) {
		s.log.Warn("api: too many failed authentications; refusing the source for a while",
			"source", src.String(), "path", r.URL.Path)
	}
}

// statusWriter records the status code written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
