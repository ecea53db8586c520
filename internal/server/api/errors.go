package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/taskproto"
)

// apiError is an error with its HTTP status and code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", msg: fmt.Sprintf(format, args...)}
}

func errUnauthenticated(msg string) error {
	return &apiError{status: http.StatusUnauthorized, code: "unauthorized", msg: msg}
}

// classify maps err to a status, code and message safe to return.
func classify(err error) *apiError {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return &apiError{http.StatusBadRequest, "request_too_large",
			fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}
	case errors.Is(err, configdb.ErrNotFound):
		return &apiError{http.StatusNotFound, "not_found", err.Error()}
	case errors.Is(err, configdb.ErrConflict):
		return &apiError{http.StatusConflict, "conflict", err.Error()}
	case errors.Is(err, taskproto.ErrStale):
		return &apiError{http.StatusConflict, "stale_attempt", err.Error()}
	case errors.Is(err, taskproto.ErrInvalid):
		return &apiError{http.StatusBadRequest, "invalid_request", err.Error()}
	case errors.Is(err, jobdef.ErrInvalid):
		return &apiError{http.StatusBadRequest, "invalid_request", err.Error()}
	case errors.Is(err, configdb.ErrInvalid):
		return &apiError{http.StatusBadRequest, "invalid_request", err.Error()}
	}
	return &apiError{http.StatusInternalServerError, "internal", "internal server error"}
}

// writeError writes err as an error response; internal causes are logged.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := classify(err)
	if ae.status == http.StatusInternalServerError {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="holdfast"`)
	}
	writeJSON(w, ae.status, apitypes.ErrorBody{Error: ae.msg, Code: ae.code})
}
