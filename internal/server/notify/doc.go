// Package notify sends the server's notifications: a message per ended
// job session to the targets the job's "notify" rules name (on failure and
// warning by default, success on request), a daily summary per target, and
// test messages.
//
// Targets are e-mail over SMTP (STARTTLS required by default, or implicit
// TLS; plain SMTP only with insecure) and webhooks (https; http only with
// insecure) that receive the Message as JSON, signed with HMAC-SHA256 of
// the body under the target's secret (X-Holdfast-Signature: sha256=HEX).
// A target's password or HMAC key is a sealed configdb secret; it is never
// shown, logged or part of an error (redact).
//
// Delivery is durable: configdb's sessions.notified marks an ended session
// once its messages are in the outbox (one transaction), so a session that
// ends while the server stops is announced when it starts again; each
// outbox message is retried with internal/retry's backoff up to the
// policy's attempts and each attempt is logged with the message. The
// daily summary of a target is queued once per day (summary_day) at its
// summary_at (UTC). The notifier is woken by the store's Observer when a
// session ends, and otherwise passes every minute on the injected clock.
// docs/notifications.md documents the webhook body.
package notify
