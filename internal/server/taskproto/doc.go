// Package taskproto holds the messages of the task API between the backup
// server and its proxies: a proxy long-polls for work (Spec), reports
// progress while it runs (Progress) and ends each attempt with a Result.
//
// The endpoints (under /api/v1/agents/tasks, mutual TLS with the proxy's
// agent certificate) are described in docs/task-protocol.md. A task attempt
// is named by its task ID and attempt number; a report for an attempt the
// server no longer runs (the proxy was declared lost meanwhile and the task
// moved on) is answered 409 and must be dropped by the proxy.
package taskproto
