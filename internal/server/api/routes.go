package api

import (
	"net/http"

	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// Permission is what a route requires of the caller's role.
type Permission string

// Permissions, see the package documentation.
const (
	PermPublic  Permission = "public"
	PermRead    Permission = "read"
	PermBackup  Permission = "backup"
	PermRestore Permission = "restore"
	PermAdmin   Permission = "admin"
	// PermJoinToken routes authenticate with a one-time agent join token
	// in the request body instead of a bearer token.
	PermJoinToken Permission = "join_token"
	// PermAgent routes authenticate with the agent's client certificate
	// (mutual TLS) instead of a bearer token.
	PermAgent Permission = "agent_certificate"
	// PermLogin routes authenticate with a user's password in the request
	// body (POST /api/v1/login).
	PermLogin Permission = "user_password"
	// PermSession routes are a console user's own (any role), through
	// their login session cookie only: an API token gets 403.
	PermSession Permission = "login_session"
)

// Allows reports whether a token or user of role may use a route needing
// p. Routes needing PermJoinToken, PermAgent or PermLogin take no API token
// at all.
func (p Permission) Allows(role configdb.Role) bool {
	switch p {
	case PermPublic:
		return true
	case PermRead, PermSession:
		return role.Valid()
	case PermBackup:
		return role == configdb.RoleAdministrator || role == configdb.RoleBackupOperator
	case PermRestore:
		return role == configdb.RoleAdministrator || role == configdb.RoleRestoreOperator
	case PermAdmin:
		return role == configdb.RoleAdministrator
	}
	return false
}

// Roles lists the roles p allows, most powerful first.
func (p Permission) Roles() []configdb.Role {
	var out []configdb.Role
	for _, r := range allRoles {
		if p.Allows(r) {
			out = append(out, r)
		}
	}
	return out
}

var allRoles = []configdb.Role{configdb.RoleAdministrator, configdb.RoleBackupOperator,
	configdb.RoleRestoreOperator, configdb.RoleViewer}

// handlerFunc serves an authorised request; an error becomes the response.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p configdb.Principal) error

// Route is one entry of the route table.
type Route struct {
	Method  string
	Path    string // ServeMux path pattern, e.g. /api/v1/jobs/{name}
	Summary string
	Perm    Permission
	Body    bool // takes a JSON request body
	handle  handlerFunc
}

// routeTable is the single list of API routes.
func (s *Server) routeTable() []Route {
	const v1 = "/api/v1"
	return []Route{
		{"GET", v1 + "/health", "Server health", PermPublic, false, s.health},
		{"GET", v1 + "/openapi.json", "This OpenAPI document", PermRead, false, s.serveOpenAPI},
		{"GET", "/metrics", "Prometheus metrics", PermRead, false, s.serveMetrics},
		{"GET", v1 + "/dashboard", "Dashboard: sessions of the last 24 h by result and hour, VMs outside their RPO, repository capacity and 7-day growth, agents online by role, running sessions with progress", PermRead, false, s.dashboard},

		{"POST", v1 + "/login", "Log a user in ({user, password, totp}): sets the session cookie, answers the CSRF token to send as X-CSRF-Token", PermLogin, true, s.login},
		{"POST", v1 + "/logout", "End the caller's login session and clear its cookie", PermRead, false, s.logout},
		{"GET", v1 + "/me", "Who the caller is: name, role, kind (session or token); a session's CSRF token", PermRead, false, s.me},
		{"PUT", v1 + "/me/password", "Change the signed-in user's own password ({current, new}; login sessions only): ends the user's other sessions", PermSession, true, s.changeOwnPassword},
		{"POST", v1 + "/users", "Create a console user ({name, role, password})", PermAdmin, true, s.createUser},
		{"GET", v1 + "/users", "List console users", PermAdmin, false, s.listUsers},
		{"GET", v1 + "/users/{name}", "Show a console user", PermAdmin, false, s.getUser},
		{"DELETE", v1 + "/users/{name}", "Delete a console user (ends its sessions)", PermAdmin, false, s.deleteUser},
		{"PUT", v1 + "/users/{name}/password", "Set a user's password ({password}); clears its lock-out, ends its sessions", PermAdmin, true, s.setUserPassword},
		{"POST", v1 + "/users/{name}/totp", "Give a user a new TOTP key (returned once); logins then need a code", PermAdmin, false, s.enableTOTP},
		{"DELETE", v1 + "/users/{name}/totp", "Remove a user's TOTP key", PermAdmin, false, s.disableTOTP},

		{"POST", v1 + "/tokens", "Create an API token (returned once)", PermAdmin, true, s.createToken},
		{"GET", v1 + "/tokens", "List API tokens", PermAdmin, false, s.listTokens},
		{"DELETE", v1 + "/tokens/{name}", "Revoke an API token", PermAdmin, false, s.deleteToken},

		{"POST", v1 + "/agents/join-tokens", "Create a one-time agent join token (returned once)", PermAdmin, true, s.createJoinToken},
		{"POST", v1 + "/agents/join", "Join as an agent: one-time join token and CSR in, certificate out", PermJoinToken, true, s.joinAgent},
		{"POST", v1 + "/agents/heartbeat", "Agent heartbeat (client certificate)", PermAgent, true, s.heartbeat},
		{"POST", v1 + "/agents/tasks/next", "Proxy: wait for the next task attempt (long poll; 204: none)", PermAgent, true, s.nextTask},
		{"POST", v1 + "/agents/tasks/progress", "Proxy: report a running attempt's progress", PermAgent, true, s.taskProgress},
		{"POST", v1 + "/agents/tasks/result", "Proxy: end an attempt (409: no longer running)", PermAgent, true, s.taskResult},
		{"GET", v1 + "/agents", "List agents (proxies and repositories), ?role=", PermRead, false, s.listAgents},

		{"POST", v1 + "/sources", "Add a source", PermBackup, true, s.createSource},
		{"GET", v1 + "/sources", "List sources", PermRead, false, s.listSources},
		{"GET", v1 + "/sources/{name}", "Show a source", PermRead, false, s.getSource},
		{"DELETE", v1 + "/sources/{name}", "Delete a source", PermBackup, false, s.deleteSource},
		{"GET", v1 + "/sources/{name}/vms", "List the VMs a selection picks from a source now, ?pattern= (a glob); disks redacted", PermBackup, false, s.listSourceVMs},
		{"GET", v1 + "/schedule/preview", "Check a job schedule and show its next runs, ?schedule=&count= (default 5, at most 50)", PermRead, false, s.schedulePreview},

		{"POST", v1 + "/jobs", "Create a job", PermBackup, true, s.createJob},
		{"GET", v1 + "/jobs", "List jobs by name, ?limit=&cursor=&summary= (default: all; the next page's cursor: header X-Next-Cursor; summary=true leaves out definitions)", PermRead, false, s.listJobs},
		{"GET", v1 + "/jobs/{name}", "Show a job", PermRead, false, s.getJob},
		{"PUT", v1 + "/jobs/{name}", "Replace a job", PermBackup, true, s.updateJob},
		{"DELETE", v1 + "/jobs/{name}", "Delete a job", PermBackup, false, s.deleteJob},
		{"POST", v1 + "/jobs/{name}/enable", "Enable a job", PermBackup, false, s.enableJob},
		{"POST", v1 + "/jobs/{name}/disable", "Disable a job", PermBackup, false, s.disableJob},
		{"POST", v1 + "/jobs/{name}/run", "Run a job now: queue a session (409 already_running while one is queued or running)", PermBackup, false, s.runJob},

		{"GET", v1 + "/sessions", "List sessions, newest first, ?job=&kind=&state=&since=&limit=&cursor= (the next page's cursor: header X-Next-Cursor)", PermRead, false, s.listSessions},
		{"GET", v1 + "/sessions/{id}", "Show a session with its tasks", PermRead, false, s.getSession},
		{"POST", v1 + "/sessions/{id}/retry", "Run an ended backup session's job again for the VMs that failed in it (a new session; 409 not_retryable, already_running)", PermBackup, false, s.retrySession},
		{"POST", v1 + "/sessions/{id}/cancel", "Cancel a running session; an Instant VM Recovery session whose exports have clients is refused (409, in_use, naming them) unless ?force=true", PermBackup, false, s.cancelSession},

		{"GET", v1 + "/points", "List restore points, newest first, ?vm=&job=&repository=&since=&limit=&cursor= (the next page's cursor: header X-Next-Cursor)", PermRead, false, s.listPoints},
		{"GET", v1 + "/points/{id}", "Show a restore point", PermRead, false, s.getPoint},
		{"POST", v1 + "/restores", "Restore a disk of a point to a path beneath a proxy's restore roots ({point, disk, target, force}); answers when a proxy took it, and cancels it if the client goes away first", PermRestore, true, s.startRestore},
		{"POST", v1 + "/instant-recoveries", "Serve a point's disks over NBD (TLS; the answer carries the session's client certificate, once) and NFS (nfs_insecure) from a proxy to the allow list (default: the caller's address; wider than /24 or /64: administrators only); cancel the session to stop", PermRestore, true, s.startMount},
		{"POST", v1 + "/publications", "Publish a point on a proxy (the mount server, as root): its filesystems mounted read-only there ({point, mount_dir}); cancel the session to unpublish", PermRestore, true, s.startPublish},

		{"POST", v1 + "/notifications", "Add a notification target (smtp or webhook; its secret is sealed, never returned)", PermAdmin, true, s.createNotification},
		{"GET", v1 + "/notifications", "List notification targets (without secrets)", PermRead, false, s.listNotificationTargets},
		{"GET", v1 + "/notifications/{name}", "Show a notification target (without its secret)", PermRead, false, s.getNotificationTarget},
		{"PUT", v1 + "/notifications/{name}", "Replace a notification target (an empty secret keeps the stored one)", PermAdmin, true, s.updateNotification},
		{"DELETE", v1 + "/notifications/{name}", "Remove a notification target", PermAdmin, false, s.deleteNotification},
		{"POST", v1 + "/notifications/{name}/test", "Send a test message now; the answer carries the SMTP or HTTP error (secrets redacted)", PermAdmin, false, s.testNotification},
		{"GET", v1 + "/notification-outbox", "List queued and sent notifications, ?target=&state=&limit=", PermRead, false, s.listNotifications},
		{"GET", v1 + "/notification-outbox/{id}", "Show a notification with its message and delivery log", PermRead, false, s.getNotification},

		{"GET", v1 + "/audit", "Audit log, ?actor=&action=&target=&limit=", PermAdmin, false, s.listAudit},
	}
}
