package configdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// NotificationTarget is where notifications go: an SMTP server and its
// recipients, or a webhook (internal/server/notify reads Config). Secret
// names the sealed secret of the target (SMTP password, webhook HMAC key)
// or is empty; the secret's value is never part of a target.
type NotificationTarget struct {
	ID         int64
	Name       string // unique
	Kind       string // smtp | webhook
	Config     json.RawMessage
	Secret     string
	SummaryAt  string // daily summary time of day, HH:MM UTC; "": none
	SummaryDay string // YYYY-MM-DD of the last summary queued
	Created    time.Time
	Updated    time.Time
}

const targetColumns = `id, name, kind, config, secret, summary_at, summary_day, created_at, updated_at`

func scanTarget(sc interface{ Scan(...any) error }) (NotificationTarget, error) {
	var t NotificationTarget
	err := sc.Scan(&t.ID, &t.Name, &t.Kind, jsonCol{&t.Config}, &t.Secret, &t.SummaryAt, &t.SummaryDay,
		timeCol{&t.Created}, timeCol{&t.Updated})
	return t, err
}

func checkTarget(t NotificationTarget) (string, error) {
	if strings.TrimSpace(t.Name) == "" {
		return "", invalid("notification target name is empty")
	}
	if t.Kind == "" {
		return "", invalid("notification target %q has no kind", t.Name)
	}
	cfg, err := jsonArg("notification target config", t.Config, nil)
	if err != nil {
		return "", err
	}
	if cfg == nil {
		return "", invalid("notification target %q has no config", t.Name)
	}
	return cfg.(string), nil
}

// CreateNotificationTarget stores a new target; a name in use is ErrConflict.
func (s *Store) CreateNotificationTarget(ctx context.Context, t NotificationTarget) (NotificationTarget, error) {
	cfg, err := checkTarget(t)
	if err != nil {
		return NotificationTarget{}, err
	}
	now := s.timestamp()
	out, err := scanTarget(s.queryRow(ctx, s.db, `INSERT INTO notification_targets (name, kind, config, secret,
		summary_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING `+targetColumns,
		t.Name, t.Kind, cfg, t.Secret, t.SummaryAt, now, now))
	return out, s.wrapNamed("create notification target "+t.Name, t.Name, err)
}

// UpdateNotificationTarget replaces the kind, config, secret and summary
// time of the target called t.Name.
func (s *Store) UpdateNotificationTarget(ctx context.Context, t NotificationTarget) (NotificationTarget, error) {
	cfg, err := checkTarget(t)
	if err != nil {
		return NotificationTarget{}, err
	}
	out, err := scanTarget(s.queryRow(ctx, s.db, `UPDATE notification_targets SET kind = ?, config = ?, secret = ?,
		summary_at = ?, updated_at = ? WHERE name = ? RETURNING `+targetColumns,
		t.Kind, cfg, t.Secret, t.SummaryAt, s.timestamp(), t.Name))
	return out, s.wrapNamed("update notification target "+t.Name, t.Name, err)
}

// GetNotificationTarget returns the target called name.
func (s *Store) GetNotificationTarget(ctx context.Context, name string) (NotificationTarget, error) {
	t, err := scanTarget(s.queryRow(ctx, s.db, "SELECT "+targetColumns+" FROM notification_targets WHERE name = ?", name))
	return t, s.wrap("notification target "+name, err)
}

// ListNotificationTargets lists the targets by name.
func (s *Store) ListNotificationTargets(ctx context.Context) ([]NotificationTarget, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+targetColumns+" FROM notification_targets ORDER BY name")
	if err != nil {
		return nil, s.wrap("list notification targets", err)
	}
	defer rows.Close()
	var out []NotificationTarget
	for rows.Next() {
		t, err := scanTarget(rows)
		if err != nil {
			return nil, s.wrap("list notification targets", err)
		}
		out = append(out, t)
	}
	return out, s.wrap("list notification targets", rows.Err())
}

// DeleteNotificationTarget deletes the target called name; its queued
// messages fail at their next attempt.
func (s *Store) DeleteNotificationTarget(ctx context.Context, name string) error {
	return s.execOne(ctx, "delete notification target "+name, "DELETE FROM notification_targets WHERE name = ?", name)
}

// Notification states.
const (
	NotificationPending   = "pending"
	NotificationDelivered = "delivered"
	NotificationFailed    = "failed"
)

// Notification is one message to one target in the outbox.
type Notification struct {
	ID        int64
	Target    string
	SessionID int64  // 0: not about one session (a daily summary)
	Event     string // failed, warning, success, cancelled, summary
	Message   json.RawMessage
	State     string // pending, delivered, failed
	Attempts  int
	NextAt    time.Time // next attempt of a pending message
	Created   time.Time
	Delivered time.Time // zero until delivered
	LastError string
	Log       string // one line per attempt
}

const notificationColumns = `id, target, session_id, event, message, state, attempts, next_at, created_at,
	delivered_at, last_error, log`

func scanNotification(sc interface{ Scan(...any) error }) (Notification, error) {
	var n Notification
	err := sc.Scan(&n.ID, &n.Target, &n.SessionID, &n.Event, jsonCol{&n.Message}, &n.State, &n.Attempts,
		timeCol{&n.NextAt}, timeCol{&n.Created}, timeCol{&n.Delivered}, &n.LastError, &n.Log)
	return n, err
}

func (s *Store) insertNotification(ctx context.Context, q querier, n Notification, now time.Time) error {
	msg, err := jsonArg("notification message", n.Message, nil)
	if err != nil {
		return err
	}
	if n.Target == "" || n.Event == "" || msg == nil {
		return invalid("a notification needs a target, an event and a message")
	}
	_, err = s.exec(ctx, q, `INSERT INTO notification_outbox (target, session_id, event, message, state,
		next_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		n.Target, n.SessionID, n.Event, msg, NotificationPending, now, now)
	return err
}

// UnnotifiedSessions returns up to limit ended sessions not yet turned
// into notifications (MarkSessionNotified), oldest end first.
func (s *Store) UnnotifiedSessions(ctx context.Context, limit int) ([]Session, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+sessionColumns+` FROM sessions
		WHERE notified = 0 AND ended_at IS NOT NULL ORDER BY ended_at, id LIMIT ?`, limit)
	if err != nil {
		return nil, s.wrap("unnotified sessions", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			return nil, s.wrap("unnotified sessions", err)
		}
		out = append(out, se)
	}
	return out, s.wrap("unnotified sessions", rows.Err())
}

// MarkSessionNotified queues ns (each pending, due now) and marks session
// id notified, in one transaction; it reports false, queuing nothing, if
// the session was marked already.
func (s *Store) MarkSessionNotified(ctx context.Context, id int64, ns []Notification) (bool, error) {
	marked := false
	now := s.timestamp()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, "UPDATE sessions SET notified = 1 WHERE id = ? AND notified = 0", id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		for _, n := range ns {
			if err := s.insertNotification(ctx, tx, n, now); err != nil {
				return err
			}
		}
		marked = true
		return nil
	})
	return marked && err == nil, s.wrap("queue notifications of session "+strconv.FormatInt(id, 10), err)
}

// QueueSummary queues n, the daily summary of day (YYYY-MM-DD) to target
// n.Target, and records the day, in one transaction; it reports false,
// queuing nothing, if that day's summary was queued already.
func (s *Store) QueueSummary(ctx context.Context, day string, n Notification) (bool, error) {
	queued := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE notification_targets SET summary_day = ?
			WHERE name = ? AND summary_day <> ?`, day, n.Target, day)
		if err != nil {
			return err
		}
		if c, err := res.RowsAffected(); err != nil || c == 0 {
			return err
		}
		queued = true
		return s.insertNotification(ctx, tx, n, s.timestamp())
	})
	return queued && err == nil, s.wrap("queue summary for "+n.Target, err)
}

// DueNotifications returns up to limit pending notifications whose next
// attempt is due at now, oldest first.
func (s *Store) DueNotifications(ctx context.Context, now time.Time, limit int) ([]Notification, error) {
	return s.listNotifications(ctx, " AND state = ? AND next_at <= ? ORDER BY next_at, id LIMIT ?",
		NotificationPending, now.UTC().Truncate(time.Microsecond), limit)
}

// NextNotificationDue returns when the earliest pending notification is
// due (zero: none is pending).
func (s *Store) NextNotificationDue(ctx context.Context) (time.Time, error) {
	var t time.Time
	err := s.queryRow(ctx, s.db, "SELECT MIN(next_at) FROM notification_outbox WHERE state = ?",
		NotificationPending).Scan(timeCol{&t})
	return t, s.wrap("next notification", err)
}

// NotificationFilter selects notifications; zero fields select all.
type NotificationFilter struct {
	Target string
	State  string
	Limit  int // 0: 100
}

// ListNotifications lists notifications, newest first.
func (s *Store) ListNotifications(ctx context.Context, f NotificationFilter) ([]Notification, error) {
	q, args := "", []any{}
	if f.Target != "" {
		q, args = q+" AND target = ?", append(args, f.Target)
	}
	if f.State != "" {
		q, args = q+" AND state = ?", append(args, f.State)
	}
	return s.listNotifications(ctx, q+" ORDER BY id DESC LIMIT ?", append(args, limit(f.Limit))...)
}

func (s *Store) listNotifications(ctx context.Context, where string, args ...any) ([]Notification, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+notificationColumns+" FROM notification_outbox WHERE 1 = 1"+where, args...)
	if err != nil {
		return nil, s.wrap("list notifications", err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		n, err := scanNotification(rows)
		if err != nil {
			return nil, s.wrap("list notifications", err)
		}
		out = append(out, n)
	}
	return out, s.wrap("list notifications", rows.Err())
}

// GetNotification returns notification id.
func (s *Store) GetNotification(ctx context.Context, id int64) (Notification, error) {
	n, err := scanNotification(s.queryRow(ctx, s.db, "SELECT "+notificationColumns+
		" FROM notification_outbox WHERE id = ?", id))
	return n, s.wrap("notification "+strconv.FormatInt(id, 10), err)
}

// NotificationAttempt is the outcome of one delivery attempt.
type NotificationAttempt struct {
	Error string    // "": delivered
	Retry time.Time // a failed attempt: when to try again; zero: give up (failed)
}

// RecordNotificationAttempt records an attempt of pending notification id:
// delivered, pending until a.Retry, or failed; a log line is appended.
func (s *Store) RecordNotificationAttempt(ctx context.Context, id int64, a NotificationAttempt) (Notification, error) {
	now := s.timestamp()
	state, next, delivered := NotificationDelivered, now, optTime(now)
	line := now.Format(time.RFC3339) + " delivered"
	if a.Error != "" {
		state, next, delivered = NotificationFailed, now, nil
		line = now.Format(time.RFC3339) + " failed: " + oneLine(a.Error)
		if !a.Retry.IsZero() {
			state, next = NotificationPending, a.Retry.UTC().Truncate(time.Microsecond)
			line += " (retry at " + next.Format(time.RFC3339) + ")"
		}
	}
	n, err := scanNotification(s.queryRow(ctx, s.db, `UPDATE notification_outbox SET state = ?, attempts = attempts + 1,
		next_at = ?, delivered_at = ?, last_error = ?, log = log || ? WHERE id = ? AND state = ? RETURNING `+notificationColumns,
		state, next, delivered, a.Error, line+"\n", id, NotificationPending))
	return n, s.wrap("record notification "+strconv.FormatInt(id, 10), err)
}

// SessionsEndedBetween returns the sessions that ended in [from, to).
func (s *Store) SessionsEndedBetween(ctx context.Context, from, to time.Time) ([]Session, error) {
	rows, err := s.query(ctx, s.db, "SELECT "+sessionColumns+` FROM sessions
		WHERE ended_at IS NOT NULL AND ended_at >= ? AND ended_at < ? ORDER BY ended_at, id`, from, to)
	if err != nil {
		return nil, s.wrap("sessions ended", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		se, err := scanSession(rows)
		if err != nil {
			return nil, s.wrap("sessions ended", err)
		}
		out = append(out, se)
	}
	return out, s.wrap("sessions ended", rows.Err())
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
