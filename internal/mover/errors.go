package mover

import (
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

var (
	// ErrSessionNotFound means the agent does not know the session: it
	// expired after inactivity, was aborted, or the agent restarted.
	ErrSessionNotFound = errors.New("mover session not found (expired, aborted or agent restarted)")
	// ErrNoSession means a backup call was made without a session: the
	// pipeline takes one with Lock.
	ErrNoSession = errors.New("no mover session: take the shared lock first")
	// ErrConflict means a request does not fit the session's state (a
	// commit whose indexes were not uploaded, an upload after commit).
	ErrConflict = errors.New("mover request conflicts with the session state")
	// ErrRepoNotFound means the agent serves no repository of that name.
	ErrRepoNotFound = errors.New("repository not served by the agent")
	// ErrForbidden means the agent's Authorize hook refused the client.
	ErrForbidden = errors.New("refused by the repository agent")
	// ErrNotSessionOwner means a client that did not start a shared
	// session tried to commit or abort it: only its owner may.
	ErrNotSessionOwner = errors.New("only the owner of a shared mover session may commit or abort it")
	// ErrTooManySessions means the client already holds as many sessions
	// as the agent allows one client (ServerOptions.Authorize, Access).
	ErrTooManySessions = errors.New("too many mover sessions for this client")
	// ErrProtocol means a malformed reply (wrong size, bad encoding).
	ErrProtocol = errors.New("mover protocol error")
)

// Error codes carried in error bodies ({"error": "...", "code": "..."}).
const (
	codeBadRequest      = "bad_request"
	codeTooLarge        = "too_large"
	codeForbidden       = "forbidden"
	codeNotOwner        = "not_session_owner"
	codeRepoNotFound    = "repo_not_found"
	codeSessionNotFound = "session_not_found"
	codeNotFound        = "not_found"
	codePointNotFound   = "point_not_found"
	codePointHeld       = "point_held"
	codeConflict        = "conflict"
	codeScanExists      = "scan_exists"
	codeCorrupt         = "corrupt"
	codeNoSpace         = "no_space"
	codeBusy            = "busy"
	codeTooManySessions = "too_many_sessions"
	codeImmutable       = "immutable"
	codeInternal        = "internal"
)

// StatusError is an error reply of the repository agent. It unwraps to the
// matching sentinel (ErrSessionNotFound, repo.ErrCorrupt, syscall.ENOSPC,
// storage.ErrNotExist, …) so callers test with errors.Is.
type StatusError struct {
	Status  int    // HTTP status
	Code    string // protocol error code
	Message string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("repository agent: %s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// Unwrap maps the error code to a sentinel error.
func (e *StatusError) Unwrap() error {
	switch e.Code {
	case codeSessionNotFound:
		return ErrSessionNotFound
	case codeRepoNotFound:
		return ErrRepoNotFound
	case codeForbidden:
		return ErrForbidden
	case codeNotOwner:
		return ErrNotSessionOwner
	case codeTooManySessions:
		return ErrTooManySessions
	case codeNotFound:
		return storage.ErrNotExist
	case codePointNotFound:
		return repo.ErrPointNotFound
	case codePointHeld:
		return repo.ErrPointHeld
	case codeConflict:
		return ErrConflict
	case codeScanExists:
		return repo.ErrScanExists
	case codeCorrupt:
		return repo.ErrCorrupt
	case codeNoSpace:
		return syscall.ENOSPC
	case codeImmutable:
		return storage.ErrImmutable
	}
	return nil
}

// apiError is a server-side error with its HTTP status and code.
type apiError struct {
	status int
	code   string
	err    error
}

func (e *apiError) Error() string { return e.err.Error() }
func (e *apiError) Unwrap() error { return e.err }

func newAPIError(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, err: fmt.Errorf(format, args...)}
}

func badRequest(err error) *apiError {
	return &apiError{status: http.StatusBadRequest, code: codeBadRequest, err: err}
}

// classify maps a server-side error to an HTTP status and error code.
func classify(err error) (int, string) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.code
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return http.StatusInsufficientStorage, codeNoSpace
	case errors.Is(err, repo.ErrPointNotFound):
		return http.StatusNotFound, codePointNotFound
	case errors.Is(err, repo.ErrPointHeld):
		return http.StatusConflict, codePointHeld
	case errors.Is(err, storage.ErrImmutable): // a hardened repository (repo.Immutable)
		return http.StatusLocked, codeImmutable
	case errors.Is(err, storage.ErrNotExist):
		return http.StatusNotFound, codeNotFound
	case errors.Is(err, repo.ErrCorrupt):
		return http.StatusInternalServerError, codeCorrupt
	}
	return http.StatusInternalServerError, codeInternal
}
