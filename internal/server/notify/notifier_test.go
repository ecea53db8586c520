package notify

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/retry"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// fakeSend records messages and fails while down is set.
type fakeSend struct {
	mu   sync.Mutex
	down error
	got  []Message
	keys []string
	sent chan Message // optional: each delivered message
}

func (f *fakeSend) send(_ context.Context, t apitypes.NotificationTarget, secret []byte, m Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down != nil {
		return f.down
	}
	f.got = append(f.got, m)
	f.keys = append(f.keys, t.Name+"/"+string(secret))
	if f.sent != nil {
		f.sent <- m
	}
	return nil
}

func openStore(t *testing.T, clk clock.Clock, dir string) *configdb.Store {
	t.Helper()
	s, err := configdb.Open(context.Background(), "sqlite://"+filepath.Join(dir, "db"),
		configdb.WithClock(clk), configdb.WithMasterKey(bytes.Repeat([]byte{1}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// addTarget stores a target with a sealed secret.
func addTarget(t *testing.T, s *configdb.Store, at apitypes.NotificationTarget, secret string) {
	t.Helper()
	ctx := context.Background()
	if err := Validate(&at); err != nil {
		t.Fatal(err)
	}
	name := ""
	if secret != "" {
		name = "notification/" + at.Name + "/secret"
		if err := s.PutSecret(ctx, name, []byte(secret)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateNotificationTarget(ctx, ToStore(at, name)); err != nil {
		t.Fatal(err)
	}
}

// endJob creates job name with def and ends one session of it in state.
func endJob(t *testing.T, s *configdb.Store, name, def string, state configdb.State) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := s.GetJob(ctx, name); errors.Is(err, configdb.ErrNotFound) {
		if _, err := s.CreateJob(ctx, configdb.Job{Name: name, Definition: []byte(def)}); err != nil {
			t.Fatal(err)
		}
	}
	se, err := s.CreateSession(ctx, name, "backup")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateSession(ctx, se.ID, state, []byte(`{"error":"disk gone"}`)); err != nil {
		t.Fatal(err)
	}
	return se.ID
}

// TestOutboxRetry: a failed job is queued once per rule that sends on
// failure (success is not sent by default), not for a failed restore of
// one of its points; delivery is retried with
// backoff on the fake clock, never early, until it succeeds; a target
// down longer than the attempts allow ends failed, with every attempt in
// the log; a removed target fails at once.
func TestOutboxRetry(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0)
	s := openStore(t, clk, t.TempDir())
	fs := &fakeSend{down: errors.New("dial tcp 127.0.0.1:1: connection refused")}
	pol := retry.Policy{Attempts: 3, Initial: time.Minute, Max: 10 * time.Minute}
	n := New(Options{Store: s, Clock: clk, Retry: pol, Send: fs.send})
	addTarget(t, s, smtpTarget(nil), "pw")
	addTarget(t, s, hookTarget("https://h.example.com/", false), "")
	def := `{"notify":[{"target":"ops"},{"target":"hook","on":["success"]}]}`
	failed := endJob(t, s, "nightly", def, configdb.StateFailed)
	endJob(t, s, "other", `{}`, configdb.StateFailed)        // no rules: nothing
	restore, _ := s.CreateSession(ctx, "nightly", "restore") // a restore of its point: nothing
	if _, err := s.UpdateSession(ctx, restore.ID, configdb.StateFailed, nil); err != nil {
		t.Fatal(err)
	}
	if err := n.Step(ctx); err != nil {
		t.Fatal(err)
	}
	list, _ := s.ListNotifications(ctx, configdb.NotificationFilter{})
	if len(list) != 1 || list[0].Target != "ops" || list[0].SessionID != failed || list[0].State != configdb.NotificationPending || list[0].Attempts != 1 {
		t.Fatalf("outbox after the first pass: %+v", list)
	}
	// Not due before the backoff (≥ 45 s: 1 min − 25 %).
	clk.Advance(44 * time.Second)
	fs.down = nil
	_ = n.Step(ctx)
	if len(fs.got) != 0 {
		t.Fatal("retried before the backoff")
	}
	clk.Advance(pol.Initial)
	if err := n.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if len(fs.got) != 1 || fs.got[0].Session != failed || fs.got[0].Error != "disk gone" || fs.keys[0] != "ops/pw" {
		t.Fatalf("delivered: %+v %v", fs.got, fs.keys)
	}
	got, _ := s.GetNotification(ctx, list[0].ID)
	if got.State != configdb.NotificationDelivered || got.Attempts != 2 || !strings.Contains(got.Log, "connection refused") {
		t.Fatalf("after delivery: %+v", got)
	}
	// A second pass queues nothing new and sends nothing again.
	_ = n.Step(ctx)
	if len(fs.got) != 1 {
		t.Fatalf("sent again: %d", len(fs.got))
	}

	// Success goes to the hook only; down for all 3 attempts: failed.
	fs.down = errors.New("503")
	endJob(t, s, "nightly", def, configdb.StateSuccess)
	for i := 0; i < 5; i++ {
		_ = n.Step(ctx)
		clk.Advance(pol.Max * 2)
	}
	list, _ = s.ListNotifications(ctx, configdb.NotificationFilter{Target: "hook"})
	if len(list) != 1 || list[0].State != configdb.NotificationFailed || list[0].Attempts != 3 || strings.Count(list[0].Log, "failed: 503") != 3 {
		t.Fatalf("hook outbox: %+v", list)
	}

	// A removed target: failed after one attempt.
	fs.down = nil
	endJob(t, s, "nightly", def, configdb.StateFailed)
	if err := s.DeleteNotificationTarget(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	_ = n.Step(ctx)
	list, _ = s.ListNotifications(ctx, configdb.NotificationFilter{Target: "ops", Limit: 1})
	if list[0].State != configdb.NotificationFailed || list[0].Attempts != 1 || !strings.Contains(list[0].LastError, "removed") {
		t.Fatalf("removed target: %+v", list[0])
	}
}

// TestSummaryOncePerDay: the summary is queued at its time, once per day,
// covering the 24 h before it.
func TestSummaryOncePerDay(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(t0.Add(-time.Hour)) // 06:00
	s := openStore(t, clk, t.TempDir())
	fs := &fakeSend{}
	n := New(Options{Store: s, Clock: clk, Send: fs.send})
	tg := smtpTarget(nil)
	tg.SummaryAt = "07:00"
	addTarget(t, s, tg, "")
	endJob(t, s, "nightly", `{}`, configdb.StateFailed)
	_ = n.Step(ctx)
	if len(fs.got) != 0 {
		t.Fatalf("summary before its time: %+v", fs.got)
	}
	clk.Advance(time.Hour)
	_ = n.Step(ctx)
	_ = n.Step(ctx)
	if len(fs.got) != 1 || fs.got[0].Event != EventSummary || fs.got[0].Summary.Sessions["failure"] != 1 || !fs.got[0].Summary.To.Equal(t0) {
		t.Fatalf("summary: %+v", fs.got)
	}
	clk.Advance(23 * time.Hour)
	_ = n.Step(ctx)
	if len(fs.got) != 1 {
		t.Fatal("second summary the same day")
	}
	clk.Advance(time.Hour)
	_ = n.Step(ctx)
	if len(fs.got) != 2 || fs.got[1].Summary.Sessions["failure"] != 0 {
		t.Fatalf("next day's summary: %+v", fs.got)
	}
}

// TestRunWakesOnSessionEnd: Run delivers when a session ends, without
// waiting for its minute.
func TestRunWakesOnSessionEnd(t *testing.T) {
	clk := clock.NewFake(t0)
	dir := t.TempDir()
	fs := &fakeSend{sent: make(chan Message, 1)}
	s := openStore(t, clk, dir)
	n := New(Options{Store: s, Clock: clk, Send: fs.send})
	addTarget(t, s, smtpTarget(nil), "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	endJob(t, s, "nightly", `{"notify":[{"target":"ops"}]}`, configdb.StateFailed)
	n.SessionEnded(configdb.Session{})
	if m := <-fs.sent; m.Result != "failure" {
		t.Fatalf("sent %+v", m)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRedact: the secret never appears in an error.
func TestRedact(t *testing.T) {
	err := redact(errors.New("535 bad password hunter2 for user"), []byte("hunter2"))
	if strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "[redacted]") {
		t.Fatal(err)
	}
	if redact(nil, []byte("x")) != nil {
		t.Fatal("nil")
	}
}
