package configdb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// testNotifications: targets are unique by name; an ended session is
// turned into notifications once, atomically; the outbox retries, delivers
// and fails with a log line per attempt; a day's summary is queued once.
func testNotifications(t *testing.T, s *Store, clk *testClock) {
	ctx := context.Background()
	tg := NotificationTarget{Name: "ops", Kind: "smtp", Config: []byte(`{"host":"mail"}`), Secret: "notification/ops/password-1", SummaryAt: "07:00"}
	if _, err := s.CreateNotificationTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateNotificationTarget(ctx, tg); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "notification target named ops") {
		t.Fatalf("duplicate target: %v", err)
	}
	if _, err := s.CreateNotificationTarget(ctx, NotificationTarget{Name: "x", Kind: "smtp"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("target without config: %v", err)
	}
	tg.Config = []byte(`{"host":"mail2"}`)
	if got, err := s.UpdateNotificationTarget(ctx, tg); err != nil || string(got.Config) != `{"host":"mail2"}` {
		t.Fatalf("update: %+v %v", got, err)
	}
	if ts, err := s.ListNotificationTargets(ctx); err != nil || len(ts) != 1 || ts[0].Secret != tg.Secret {
		t.Fatalf("list: %+v %v", ts, err)
	}

	// A running session is not announced; once ended it is, once.
	if _, err := s.CreateJob(ctx, Job{Name: "nightly", Definition: []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	se, err := s.CreateSession(ctx, "nightly", "backup")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UnnotifiedSessions(ctx, 10); len(got) != 0 {
		t.Fatalf("running session listed: %+v", got)
	}
	if _, err := s.UpdateSession(ctx, se.ID, StateFailed, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.UnnotifiedSessions(ctx, 10)
	if err != nil || len(got) != 1 || got[0].ID != se.ID {
		t.Fatalf("unnotified: %+v %v", got, err)
	}
	n := Notification{Target: "ops", SessionID: se.ID, Event: "failed", Message: []byte(`{"subject":"s"}`)}
	if ok, err := s.MarkSessionNotified(ctx, se.ID, []Notification{n}); !ok || err != nil {
		t.Fatalf("mark: %v %v", ok, err)
	}
	if ok, err := s.MarkSessionNotified(ctx, se.ID, []Notification{n}); ok || err != nil {
		t.Fatalf("second mark: %v %v", ok, err)
	}
	if got, _ := s.UnnotifiedSessions(ctx, 10); len(got) != 0 {
		t.Fatalf("notified session listed again: %+v", got)
	}
	// A bad message rolls the mark back.
	se2, _ := s.CreateSession(ctx, "nightly", "backup")
	_, _ = s.UpdateSession(ctx, se2.ID, StateSuccess, nil)
	if ok, err := s.MarkSessionNotified(ctx, se2.ID, []Notification{{Target: "ops", Event: "x", Message: []byte("{")}}); ok || !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad message: %v %v", ok, err)
	}
	if got, _ := s.UnnotifiedSessions(ctx, 10); len(got) != 1 {
		t.Fatalf("rolled back mark: %+v", got)
	}

	due, err := s.DueNotifications(ctx, clk.now(), 10)
	if err != nil || len(due) != 1 || due[0].State != NotificationPending {
		t.Fatalf("due: %+v %v", due, err)
	}
	id := due[0].ID
	retry := clk.now().Add(time.Minute)
	if _, err := s.RecordNotificationAttempt(ctx, id, NotificationAttempt{Error: "dial tcp: refused\nline", Retry: retry}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueNotifications(ctx, clk.now(), 10); len(due) != 0 {
		t.Fatalf("retried message due early: %+v", due)
	}
	if next, err := s.NextNotificationDue(ctx); err != nil || !next.Equal(retry.UTC().Truncate(time.Microsecond)) {
		t.Fatalf("next due %v %v, want %v", next, err, retry)
	}
	clk.advance(time.Minute)
	if due, _ := s.DueNotifications(ctx, clk.now(), 10); len(due) != 1 {
		t.Fatalf("not due after the wait: %+v", due)
	}
	got1, err := s.RecordNotificationAttempt(ctx, id, NotificationAttempt{})
	if err != nil || got1.State != NotificationDelivered || got1.Attempts != 2 || got1.Delivered.IsZero() ||
		strings.Count(got1.Log, "\n") != 2 || !strings.Contains(got1.Log, "failed: dial tcp: refused line") {
		t.Fatalf("delivered: %+v %v", got1, err)
	}
	if _, err := s.RecordNotificationAttempt(ctx, id, NotificationAttempt{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("attempt on a delivered message: %v", err)
	}
	if next, _ := s.NextNotificationDue(ctx); !next.IsZero() {
		t.Fatalf("next due with none pending: %v", next)
	}

	// Summaries: once per day and target.
	sum := Notification{Target: "ops", Event: "summary", Message: []byte(`{}`)}
	if ok, err := s.QueueSummary(ctx, "2031-05-06", sum); !ok || err != nil {
		t.Fatalf("summary: %v %v", ok, err)
	}
	if ok, err := s.QueueSummary(ctx, "2031-05-06", sum); ok || err != nil {
		t.Fatalf("second summary: %v %v", ok, err)
	}
	gone := sum
	gone.Target = "gone"
	if ok, err := s.QueueSummary(ctx, "2031-05-06", gone); ok || err != nil {
		t.Fatalf("summary to unknown target: %v %v", ok, err)
	}
	list, err := s.ListNotifications(ctx, NotificationFilter{Target: "ops", State: NotificationPending})
	if err != nil || len(list) != 1 || list[0].Event != "summary" {
		t.Fatalf("pending list: %+v %v", list, err)
	}
	if _, err := s.RecordNotificationAttempt(ctx, list[0].ID, NotificationAttempt{Error: "550 refused"}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.GetNotification(ctx, list[0].ID); n.State != NotificationFailed || n.LastError != "550 refused" {
		t.Fatalf("failed: %+v", n)
	}
	ended, err := s.SessionsEndedBetween(ctx, clk.now().Add(-time.Hour), clk.now().Add(time.Second))
	if err != nil || len(ended) != 2 {
		t.Fatalf("ended between: %d %v", len(ended), err)
	}
	if err := s.DeleteNotificationTarget(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
}

// testMigrateNotified: sessions that ended before the notifications migration are not
// announced by a server upgraded to it; one still running is, once it ends.
func testMigrateNotified(t *testing.T, b backend) {
	ctx := context.Background()
	o := openOldSchema(ctx, t, b, "notifications", newClock())
	dsn, db, old := o.DSN, o.DB, o.Store
	ended, _ := old.CreateSession(ctx, "", "backup")
	if _, err := old.UpdateSession(ctx, ended.ID, StateFailed, nil); err != nil {
		t.Fatal(err)
	}
	running, _ := old.CreateSession(ctx, "", "backup")
	db.Close()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.UnnotifiedSessions(ctx, 10); err != nil || len(got) != 0 {
		t.Fatalf("old sessions to announce: %+v %v", got, err)
	}
	if _, err := s.UpdateSession(ctx, running.ID, StateSuccess, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := s.UnnotifiedSessions(ctx, 10); err != nil || len(got) != 1 || got[0].ID != running.ID {
		t.Fatalf("session ended after the upgrade: %+v %v", got, err)
	}
}
