package apiclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// Sentinels an *Error matches with errors.Is.
var (
	// ErrRefused: the server refused the caller (401 or 403): a token or
	// join token unknown, expired or of another role, a certificate it no
	// longer knows, a role that may not do this.
	ErrRefused  = errors.New("refused by the server")
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

// Error is an error answer of the server.
type Error struct {
	Status  int
	Code    string // the API's error code, e.g. "invalid_request"
	Message string // the server's message (the status text if it sent none)
}

func (e *Error) Error() string {
	return fmt.Sprintf("server answered HTTP %d: %s", e.Status, e.Message)
}

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

func newError(status int, data []byte) *Error {
	var body apitypes.ErrorBody
	if json.Unmarshal(data, &body) != nil || body.Error == "" {
		body.Error = strings.TrimSpace(http.StatusText(status))
	}
	return &Error{Status: status, Code: body.Code, Message: body.Error}
}
