// Package apiclient is the one client of the server's REST API
// (/api/v1): the CLI calls it with a bearer token, the agents with their
// client certificate (mutual TLS). Requests and answers are the types of
// internal/server/apitypes.
//
// An error answer becomes an *apitypes.Error — the type the server's
// handlers return — carrying the status, the code and the server's
// message, wrapped as "server answered HTTP 409: …"; errors.Is matches it
// against apitypes.ErrRefused (401, 403), ErrNotFound (404) and
// ErrConflict (409). Connection failures are
// returned as the HTTP client gave them (a *url.Error). The token is
// never part of an error.
package apiclient
