package configdb

import (
	"context"
	"encoding/json"
	"time"
)

// AuditEntry is one audit log record.
type AuditEntry struct {
	ID      int64
	At      time.Time
	Actor   string // token name, agent "proxy:NAME", "system" …
	Action  string // e.g. "job.create", "token.create", "agent.join"
	Target  string
	Details json.RawMessage
}

// Audit records that actor did action on target. details is marshalled to
// JSON (nil: none; a json.RawMessage is stored as is).
func (s *Store) Audit(ctx context.Context, actor, action, target string, details any) error {
	if actor == "" || action == "" {
		return invalid("audit entry needs an actor and an action")
	}
	var det any
	if details != nil {
		b, err := json.Marshal(details)
		if err != nil {
			return invalid("audit details: %v", err)
		}
		det = string(b)
	}
	_, err := s.exec(ctx, s.db, "INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
		s.timestamp(), actor, action, target, det)
	return s.wrap("audit", err)
}

// AuditFilter selects audit entries; zero fields select all.
type AuditFilter struct {
	Actor  string
	Action string
	Target string
	Since  time.Time
	Limit  int // 0: 100
}

// ListAudit lists audit entries, newest first.
func (s *Store) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	q, args := "SELECT id, at, actor, action, target, details FROM audit_log WHERE 1 = 1", []any{}
	for _, c := range []struct{ col, v string }{{"actor", f.Actor}, {"action", f.Action}, {"target", f.Target}} {
		if c.v != "" {
			q, args = q+" AND "+c.col+" = ?", append(args, c.v)
		}
	}
	if !f.Since.IsZero() {
		q, args = q+" AND at >= ?", append(args, f.Since)
	}
	rows, err := s.query(ctx, s.db, q+" ORDER BY id DESC LIMIT ?", append(args, limit(f.Limit))...)
	if err != nil {
		return nil, s.wrap("list audit log", err)
	}
	defer rows.Close()
	var out []AuditEntry
	for rows.Next() {
		var e AuditEntry
		if err := rows.Scan(&e.ID, timeCol{&e.At}, &e.Actor, &e.Action, &e.Target, jsonCol{&e.Details}); err != nil {
			return nil, s.wrap("list audit log", err)
		}
		out = append(out, e)
	}
	return out, s.wrap("list audit log", rows.Err())
}
