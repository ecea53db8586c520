// Package api is the REST API of `holdfast server`, served under /api/v1
// (and Prometheus metrics at /metrics) by an http.Handler built with New
// from a *configdb.Store.
//
// # Routes and permissions
//
// One route table (routes.go) declares every route: method, path (a Go 1.22
// ServeMux pattern such as "POST /api/v1/jobs/{name}/run"), a summary and
// the permission it needs. The same table registers the handlers, checks
// permissions and generates the OpenAPI 3.0 document served at
// GET /api/v1/openapi.json, so the three cannot drift apart.
//
// Permissions map to API token roles:
//
//	PermPublic   no token needed (GET /api/v1/health only)
//	PermRead     every role (viewer, restore_operator, backup_operator, administrator)
//	PermBackup   backup_operator, administrator: create, edit, delete and run jobs and sources
//	PermRestore  restore_operator, administrator: restore points and restores (routes to come)
//	PermAdmin    administrator: API tokens, console users, agent join tokens, the audit log
//	PermSession  any role, but a console user's login session only (API tokens 403):
//	             PUT /api/v1/me/password, a user changing their own password
//
// Two routes take no API token at all: agents call them.
//
//	PermJoinToken     POST /api/v1/agents/join: the one-time join token in the body
//	                  (configdb.ConsumeJoinToken) enrols a proxy or repository; the CSR
//	                  in the body is signed by Config.CA (503 without one) and the
//	                  answer carries the certificate and the CA. Unknown, expired or
//	                  used token 401; a token of the other role 403 (and spent).
//	PermAgent         POST /api/v1/agents/heartbeat: the agent's client certificate,
//	                  verified by the TLS handshake against the CA
//	                  (pki.ServerTLSConfig), whose fingerprint must be the one the
//	                  agents table holds (a deleted or re-joined agent's old
//	                  certificate is 401). A repository agent's heartbeat reply also
//	                  lists the certificates it must admit ("peers": the server's,
//	                  Config.ServerFingerprint, and every proxy's current one).
//
// Every other request needs `Authorization: Bearer <token>`, checked with
// configdb.Store.Authenticate; a missing or invalid token is 401 with
// `WWW-Authenticate: Bearer`, a role without the permission 403.
//
// Web console users (users.go, login.go, sessionauth.go) authenticate
// the same routes without a bearer token by the login session cookie
// (SessionCookie: Secure, HttpOnly, SameSite=Strict) that
// PermLogin's POST /api/v1/login sets after checking the user's argon2id
// password hash (internal/passhash) and TOTP code; users have the token
// roles, so the same permissions apply. With the cookie, POST, PUT and
// DELETE also need the session's CSRF token in X-CSRF-Token (an HMAC of a
// label keyed with the session secret, answered by login and GET
// /api/v1/me) and, if sent, an Origin of this server: else 403
// csrf_failed. LoginPolicy sets the lock-out (5 failures, 15 min: 429
// locked) and the session lifetimes (30 min idle, 12 h in all).
//
// Failed token authentication (API and join tokens) is throttled per
// client address (IPv4 address or IPv6 /64; Config.AuthFailures, default
// 10 failures, then one more per second): an address over the limit gets
// 429 too_many_failures with Retry-After for every request needing a
// token, before the token is looked at; other addresses are unaffected.
// Agent certificate endpoints are not throttled.
//
// # Requests and responses
//
// Bodies are JSON, at most 1 MiB, and unknown fields are rejected. Errors
// have one shape, {"error": "message", "code": "invalid_request"}, with the
// codes unauthorized (401), forbidden (403), invalid_request (400),
// request_too_large (400), not_found (404), method_not_allowed (405),
// conflict (409), too_many_failures (429), unavailable (503: health, or join without a CA) and internal (500; the
// cause is logged, not returned). configdb.ErrInvalid maps to 400,
// ErrNotFound to 404, ErrConflict to 409.
//
// # Audit and secrets
//
// Every successful mutating call writes an audit entry (actor = the token's
// name, an action such as "job.create", the target's name) through
// configdb.Store.Audit. A password given inline (the "password" field of a
// job or source, or a "password" key of its definition) is stored with
// configdb.Store.PutSecret under a fresh name "job/NAME/password-RANDOM" (or
// "source/…") and replaced in the stored definition by
// "password_secret": "<secret name>" (also shown as "password_ref");
// responses, audit details and logs only ever show that reference. A fresh
// name per password means a failed, conflicting or concurrent call never
// overwrites the secret another job uses; the superseded secret is deleted
// once the new definition is stored, and a job's or source's secret with it.
// PUT without a password keeps the current reference. A definition may also
// name a secret of its own choosing in "password_secret", but not one the
// API manages for another object. Plaintext API and join tokens are returned
// once, by the call that creates them.
//
// # Running jobs
//
// POST /api/v1/jobs/{name}/run creates a session in state "queued" and, if
// the server was built with a Runner, calls Runner.Start with it. Executing
// the session (scheduling tasks on proxies and repositories, moving the
// session through running to a terminal state) is the Runner's job; Start
// must not block on the run and must not keep the request context. Without
// a Runner the session simply stays queued.
package api
