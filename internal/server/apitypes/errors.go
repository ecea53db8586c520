package apitypes

import (
	"errors"
	"net/http"
)

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// Error is an error answer: the server's handlers return it (the status,
// the code and a message safe to show), the client decodes it from an
// ErrorBody.
type Error struct {
	Status  int    // HTTP status
	Code    string // e.g. "invalid_request", "not_found", "conflict"
	Message string
}

func (e *Error) Error() string { return e.Message }

// Sentinels an *Error matches with errors.Is, by status.
var (
	// ErrRefused: the caller was refused (401 or 403): a token or join
	// token unknown, expired or of another role, a certificate the server
	// no longer knows, a role that may not do this.
	ErrRefused  = errors.New("refused by the server")
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// Is matches the sentinels of the status.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrRefused:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	case ErrNotFound:
		return e.Status == http.StatusNotFound
	case ErrConflict:
		return e.Status == http.StatusConflict
	}
	return false
}
