package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/retry"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// DefaultRetry is the delivery retry policy: 10 attempts, backoff from
// 30 s doubling to 1 h (about 5 h in all).
var DefaultRetry = retry.Policy{Attempts: 10, Initial: 30 * time.Second, Max: time.Hour}

// SendFunc delivers one message to one target; secret is the target's
// password or HMAC key (nil: none).
type SendFunc func(ctx context.Context, t apitypes.NotificationTarget, secret []byte, m Message) error

// Options configure a Notifier.
type Options struct {
	Store  *configdb.Store
	Clock  clock.Clock  // nil: real
	Retry  retry.Policy // zero fields: DefaultRetry's
	Logger *slog.Logger // nil: discard
	Send   SendFunc     // nil: Send (SMTP and webhooks); tests inject faults
}

// Notifier turns ended sessions into messages in the outbox, queues the
// daily summaries and delivers the outbox with retries.
type Notifier struct {
	store *configdb.Store
	clk   clock.Clock
	pol   retry.Policy
	log   *slog.Logger
	send  SendFunc
	wake  chan struct{}
}

// New returns a Notifier; Run drives it.
func New(o Options) *Notifier {
	n := &Notifier{store: o.Store, clk: clock.Or(o.Clock), pol: o.Retry.Or(DefaultRetry), log: o.Logger,
		send: o.Send, wake: make(chan struct{}, 1)}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.send == nil {
		n.send = Send
	}
	return n
}

// SessionEnded wakes the notifier (configdb.Observer): the session is
// read back from the database, where it is marked once handled.
func (n *Notifier) SessionEnded(configdb.Session) {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// TaskEnded implements configdb.Observer.
func (n *Notifier) TaskEnded(configdb.Task) {}

var _ configdb.Observer = (*Notifier)(nil)

// idle is the longest wait between passes (summaries, pending messages
// the wake-up missed).
const idle = time.Minute

// Run makes a pass now and whenever a session ends, a message is due or
// a minute passed, until ctx ends.
func (n *Notifier) Run(ctx context.Context) error {
	for {
		if err := n.Step(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("notifications", "err", err)
		}
		wait := idle
		if next, err := n.store.NextNotificationDue(ctx); err == nil && !next.IsZero() {
			wait = min(wait, max(next.Sub(n.clk.Now()), 0))
		}
		t := n.clk.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-n.wake:
			t.Stop()
		case <-t.C():
		}
	}
}

// Step makes one pass: queue the messages of ended sessions, queue the
// daily summaries that are due, deliver the due messages.
func (n *Notifier) Step(ctx context.Context) error {
	return errors.Join(n.queueSessions(ctx), n.queueSummaries(ctx), n.deliver(ctx))
}

func (n *Notifier) queueSessions(ctx context.Context) error {
	for {
		ended, err := n.store.UnnotifiedSessions(ctx, 100)
		if err != nil || len(ended) == 0 {
			return err
		}
		for _, se := range ended {
			if _, err := n.store.MarkSessionNotified(ctx, se.ID, n.sessionNotices(ctx, se)); err != nil {
				return err
			}
		}
	}
}

// sessionNotices are the messages of an ended run of a job: one per rule
// of the job that sends on its result. Sessions of another kind that name
// the job (restores and mounts of its points) send nothing.
func (n *Notifier) sessionNotices(ctx context.Context, se configdb.Session) []configdb.Notification {
	if se.JobName == "" {
		return nil
	}
	job, err := n.store.GetJob(ctx, se.JobName)
	if err != nil || job.Kind != se.Kind {
		return nil // deleted (or renamed) since; or a restore or mount of one of its points
	}
	def, err := jobdef.Parse(job.Definition)
	if err != nil {
		return nil
	}
	var out []configdb.Notification
	for _, rule := range def.Notify {
		if !rule.Sends(string(se.State)) {
			continue
		}
		msg, _ := json.Marshal(SessionMessage(se))
		out = append(out, configdb.Notification{Target: rule.Target, SessionID: se.ID, Event: resultName(se.State), Message: msg})
	}
	return out
}

// summaryDue returns the day and time of t's last summary at or before
// now ("" if its time has not come today).
func summaryDue(at string, now time.Time) (string, time.Time, bool) {
	hm, err := time.Parse("15:04", at)
	if err != nil {
		return "", time.Time{}, false
	}
	now = now.UTC()
	due := time.Date(now.Year(), now.Month(), now.Day(), hm.Hour(), hm.Minute(), 0, 0, time.UTC)
	if now.Before(due) {
		return "", time.Time{}, false
	}
	return due.Format(time.DateOnly), due, true
}

func (n *Notifier) queueSummaries(ctx context.Context) error {
	targets, err := n.store.ListNotificationTargets(ctx)
	if err != nil {
		return err
	}
	for _, t := range targets {
		day, due, ok := summaryDue(t.SummaryAt, n.clk.Now())
		if !ok || t.SummaryDay == day {
			continue
		}
		sessions, err := n.store.SessionsEndedBetween(ctx, due.Add(-24*time.Hour), due)
		if err != nil {
			return err
		}
		last, err := n.store.LastPoints(ctx)
		if err != nil {
			return err
		}
		msg, _ := json.Marshal(SummaryMessage(due, sessions, last))
		if _, err := n.store.QueueSummary(ctx, day, configdb.Notification{Target: t.Name, Event: EventSummary, Message: msg}); err != nil {
			return err
		}
	}
	return nil
}

func (n *Notifier) deliver(ctx context.Context) error {
	due, err := n.store.DueNotifications(ctx, n.clk.Now(), 50)
	if err != nil {
		return err
	}
	for _, msg := range due {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		att := configdb.NotificationAttempt{}
		if err := n.deliverOne(ctx, msg); err != nil {
			att.Error = err.Error()
			if msg.Attempts+1 < n.pol.Attempts && !errors.Is(err, errNoTarget) {
				att.Retry = n.clk.Now().Add(n.pol.Backoff(msg.Attempts + 1))
			}
			n.log.Warn("notification not delivered", "id", msg.ID, "target", msg.Target, "attempt", msg.Attempts+1,
				"err", att.Error, "retry", !att.Retry.IsZero())
		}
		if _, err := n.store.RecordNotificationAttempt(ctx, msg.ID, att); err != nil {
			return err
		}
	}
	return nil
}

var errNoTarget = errors.New("the notification target was removed")

func (n *Notifier) deliverOne(ctx context.Context, msg configdb.Notification) error {
	t, secret, err := n.target(ctx, msg.Target)
	if errors.Is(err, configdb.ErrNotFound) {
		return errNoTarget
	}
	if err != nil {
		return err
	}
	var m Message
	if err := json.Unmarshal(msg.Message, &m); err != nil {
		return fmt.Errorf("stored message: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	return redact(n.send(sctx, t, secret, m), secret)
}

// target loads a target and its secret.
func (n *Notifier) target(ctx context.Context, name string) (apitypes.NotificationTarget, []byte, error) {
	st, err := n.store.GetNotificationTarget(ctx, name)
	if err != nil {
		return apitypes.NotificationTarget{}, nil, err
	}
	t, err := FromStore(st)
	if err != nil {
		return t, nil, err
	}
	var secret []byte
	if st.Secret != "" {
		if secret, err = n.store.GetSecret(ctx, st.Secret); err != nil {
			return t, nil, err
		}
	}
	return t, secret, nil
}

// Test sends a test message to the target called name now, outside the
// outbox; the error (SMTP or HTTP) has the target's secret redacted.
func (n *Notifier) Test(ctx context.Context, name string) error {
	t, secret, err := n.target(ctx, name)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return redact(n.send(sctx, t, secret, TestMessage(name, n.clk.Now())), secret)
}

// Send delivers m to t: e-mail or webhook.
func Send(ctx context.Context, t apitypes.NotificationTarget, secret []byte, m Message) error {
	var err error
	switch {
	case t.SMTP != nil:
		err = sendSMTP(ctx, t.SMTP, string(secret), m, clock.Real().Now())
	case t.Webhook != nil:
		err = sendWebhook(ctx, t.Webhook, secret, m)
	default:
		err = fmt.Errorf("target %s has no settings", t.Name)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", t.Kind, endpoint(t), err)
	}
	return nil
}

// redact replaces the secret in err's text; the error chain is dropped
// with it.
func redact(err error, secret []byte) error {
	if err == nil || len(secret) == 0 || !strings.Contains(err.Error(), string(secret)) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), string(secret), "[redacted]"))
}
