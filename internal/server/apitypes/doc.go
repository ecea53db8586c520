// Package apitypes holds the request and response bodies of the server's
// REST API (/api/v1, described by /api/v1/openapi.json), and its error
// answer (Error, with the sentinels errors.Is matches): the server's handlers
// (internal/server/api) encode them, the CLI and the agents
// (internal/server/apiclient) decode them. It depends on nothing of
// Holdfast but the job definition (internal/jobdef). Times are RFC 3339
// UTC; optional times are pointers, omitted when unset.
package apitypes
