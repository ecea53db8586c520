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

// newError is an error answer with status, code and a message safe to show.
func newError(status int, code, msg string) *apitypes.Error {
	return &apitypes.Error{Status: status, Code: code, Message: msg}
}

func badRequest(format string, args ...any) error {
	return &apitypes.Error{Status: http.StatusBadRequest, Code: "invalid_request", Message: fmt.Sprintf(format, args...)}
}

func errUnauthenticated(msg string) error {
	return &apitypes.Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: msg}
}

// classify maps err to a status, code and message safe to return.
func classify(err error) *apitypes.Error {
	var ae *apitypes.Error
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return newError(http.StatusBadRequest, "request_too_large",
			fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
	case errors.Is(err, configdb.ErrNotFound):
		return newError(http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, configdb.ErrConflict):
		return newError(http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, taskproto.ErrStale):
		return newError(http.StatusConflict, "stale_attempt", err.Error())
	case errors.Is(err, taskproto.ErrInvalid):
		return newError(http.StatusBadRequest, "invalid_request", err.Error())
	case errors.Is(err, jobdef.ErrInvalid):
		return newError(http.StatusBadRequest, "invalid_request", err.Error())
	case errors.Is(err, configdb.ErrInvalid):
		return newError(http.StatusBadRequest, "invalid_request", err.Error())
	}
	return newError(http.StatusInternalServerError, "internal", "internal server error")
}

// writeError writes err as an error response; internal causes are logged.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := classify(err)
	if ae.Status == http.StatusInternalServerError {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="holdfast"`)
	}
	writeJSON(w, ae.Status, apitypes.ErrorBody{Error: ae.Message, Code: ae.Code})
}
