package apitypes

import (
	"encoding/json"
	"time"
)

// NotificationTarget is a notification target as the API shows it
// (GET /api/v1/notifications): never its password or HMAC key, only
// whether it has one. Kind is "smtp" or "webhook"; the matching field is
// set. SummaryAt is the daily summary's time of day (HH:MM, UTC; "": none).
type NotificationTarget struct {
	Name      string         `json:"name"`
	Kind      string         `json:"kind"`
	SMTP      *SMTPConfig    `json:"smtp,omitempty"`
	Webhook   *WebhookConfig `json:"webhook,omitempty"`
	SummaryAt string         `json:"summary_at,omitempty"`
	HasSecret bool           `json:"has_secret"`
	Created   time.Time      `json:"created,omitzero"`
	Updated   time.Time      `json:"updated,omitzero"`
}

// NotificationTargetRequest is the body of POST /api/v1/notifications and
// PUT /api/v1/notifications/{name}. Secret is the SMTP password or the
// webhook's HMAC key: sealed by the server, never returned; on PUT an
// empty Secret keeps the stored one unless ClearSecret.
type NotificationTargetRequest struct {
	NotificationTarget
	Secret      string `json:"secret,omitempty"`
	ClearSecret bool   `json:"clear_secret,omitempty"`
}

// SMTP TLS modes.
const (
	TLSStartTLS = "starttls" // plain connection upgraded with STARTTLS (required), port 587
	TLSImplicit = "implicit" // TLS from the first byte, port 465
	TLSNone     = "none"     // no TLS: needs Insecure
)

// SMTPConfig is an e-mail target: the SMTP server, its TLS mode, the
// sender and recipients, and the user to log in as (the password is the
// target's secret).
type SMTPConfig struct {
	Host     string   `json:"host"`
	Port     int      `json:"port,omitempty"` // 0: 587 (starttls), 465 (implicit), 25 (none)
	TLS      string   `json:"tls,omitempty"`  // starttls (default), implicit, none
	CAPEM    string   `json:"ca_pem,omitempty"`
	Insecure bool     `json:"insecure,omitempty"` // allow tls none
	From     string   `json:"from"`
	To       []string `json:"to"`
	Username string   `json:"username,omitempty"`
}

// WebhookConfig is a webhook target: an https URL (http only with
// Insecure) that receives each message as JSON (docs/notifications.md),
// signed with HMAC-SHA256 of the body under the target's secret in the
// X-Holdfast-Signature header when it has one.
type WebhookConfig struct {
	URL      string `json:"url"`
	CAPEM    string `json:"ca_pem,omitempty"`
	Insecure bool   `json:"insecure,omitempty"`
}

// Notification is one message in the outbox (GET /api/v1/notifications/outbox).
type Notification struct {
	ID        int64           `json:"id"`
	Target    string          `json:"target"`
	Session   int64           `json:"session,omitempty"`
	Event     string          `json:"event"`
	State     string          `json:"state"` // pending, delivered, failed
	Attempts  int             `json:"attempts"`
	NextAt    *time.Time      `json:"next_at,omitempty"`
	Created   time.Time       `json:"created"`
	Delivered *time.Time      `json:"delivered,omitempty"`
	LastError string          `json:"last_error,omitempty"`
	Log       []string        `json:"log,omitempty"`
	Message   json.RawMessage `json:"message,omitempty"` // GET …/outbox/{id} only
}

// NotificationTest answers POST /api/v1/notifications/{name}/test.
type NotificationTest struct {
	Target    string `json:"target"`
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"` // the SMTP or HTTP error, secrets redacted
}
