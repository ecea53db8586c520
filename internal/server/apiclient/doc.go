// Package apiclient is the one client of the server's REST API
// (/api/v1): the CLI calls it with a bearer token, the agents with their
// client certificate (mutual TLS). Requests and answers are the types of
// internal/server/apitypes.
//
// An error answer becomes an *Error carrying the status, the code and the
// server's message; errors.Is matches it against ErrRefused (401, 403),
// ErrNotFound (404) and ErrConflict (409). Connection failures are
// returned as the HTTP client gave them (a *url.Error). The token is
// never part of an error.
package apiclient
