package notify

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/retry"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/orchestrator"
	"github.com/holdfast-backup/holdfast/internal/testutil/smtptest"
)

const mailPassword = "s3cret-pw-for-smtp"

// hookReceiver is a TLS webhook receiver that checks the signature.
type hookReceiver struct {
	srv   *httptest.Server
	got   chan Message
	bad   chan string
	caPEM string
}

func newHookReceiver(t *testing.T, key string) *hookReceiver {
	h := &hookReceiver{got: make(chan Message, 10), bad: make(chan string, 10)}
	h.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !Verify([]byte(key), body, r.Header.Get(SignatureHeader)) {
			h.bad <- "bad signature " + r.Header.Get(SignatureHeader)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m Message
		if err := json.Unmarshal(body, &m); err != nil {
			h.bad <- err.Error()
			return
		}
		h.got <- m
	}))
	t.Cleanup(h.srv.Close)
	h.caPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.srv.Certificate().Raw}))
	return h
}

func mailTarget(s *smtptest.Server, port int, implicit bool) apitypes.NotificationTarget {
	mode := apitypes.TLSStartTLS
	if implicit {
		mode = apitypes.TLSImplicit
	}
	return apitypes.NotificationTarget{Name: "ops-mail", Kind: KindSMTP, SMTP: &apitypes.SMTPConfig{
		Host: "127.0.0.1", Port: port, TLS: mode, CAPEM: s.CAPEM, From: "holdfast@example.com",
		To: []string{"ops@example.com", "oncall@example.com"}, Username: "holdfast"}}
}

func failedResult() []byte {
	b, _ := json.Marshal(orchestrator.Result{Status: configdb.StateFailed, VMs: []orchestrator.VMResult{
		{Name: "db<1>&\"x\"", Status: configdb.StateFailed, Errors: []string{"disk 0: open /vm/db.img: no such file or directory"}}}})
	return b
}

// TestEndToEndMailpitAndWebhook: against a real SMTP server (mailpit,
// STARTTLS required, login required) and a real TLS webhook receiver:
// the test button delivers and reports a wrong password without echoing
// it; a failed job sends e-mail and a signed webhook with the reason; a
// successful run sends nothing by default.
func TestEndToEndMailpitAndWebhook(t *testing.T) {
	ctx := context.Background()
	mp := smtptest.Start(t, smtptest.Options{User: "holdfast", Password: mailPassword})
	hook := newHookReceiver(t, "hmac-key-1")
	s := openStore(t, clock.Real(), t.TempDir())
	n := New(Options{Store: s})
	addTarget(t, s, mailTarget(mp, mp.Port, false), mailPassword)
	addTarget(t, s, apitypes.NotificationTarget{Name: "chat", Kind: KindWebhook,
		Webhook: &apitypes.WebhookConfig{URL: hook.srv.URL + "/hook", CAPEM: hook.caPEM}}, "hmac-key-1")

	if err := n.Test(ctx, "ops-mail"); err != nil {
		t.Fatalf("test button: %v", err)
	}
	msgs, err := mp.Messages(ctx)
	if err != nil || len(msgs) != 1 || !strings.Contains(msgs[0].Subject, "test message") || len(msgs[0].To) != 2 {
		t.Fatalf("test message: %+v %v", msgs, err)
	}
	if err := n.Test(ctx, "chat"); err != nil {
		t.Fatalf("webhook test: %v", err)
	}
	if m := <-hook.got; m.Event != EventTest {
		t.Fatalf("webhook test message %+v", m)
	}

	// A wrong password: a clear error, the password not in it.
	wrong := mailTarget(mp, mp.Port, false)
	wrong.Name = "wrong"
	addTarget(t, s, wrong, "not-the-password")
	err = n.Test(ctx, "wrong")
	if err == nil || !strings.Contains(err.Error(), "authentication as holdfast") || strings.Contains(err.Error(), "not-the-password") {
		t.Fatalf("wrong password: %v", err)
	}
	t.Logf("wrong password reported as: %v", err)

	// A failed job: e-mail and webhook with the reason; success: nothing.
	def := `{"notify":[{"target":"ops-mail"},{"target":"chat"}]}`
	if _, err := s.CreateJob(ctx, configdb.Job{Name: "nightly", Definition: []byte(def)}); err != nil {
		t.Fatal(err)
	}
	se, _ := s.CreateSession(ctx, "nightly", "backup")
	if _, err := s.UpdateSession(ctx, se.ID, configdb.StateFailed, failedResult()); err != nil {
		t.Fatal(err)
	}
	ok, _ := s.CreateSession(ctx, "nightly", "backup")
	if _, err := s.UpdateSession(ctx, ok.ID, configdb.StateSuccess, nil); err != nil {
		t.Fatal(err)
	}
	if err := n.Step(ctx); err != nil {
		t.Fatal(err)
	}
	m := <-hook.got
	if m.Session != se.ID || m.Result != "failure" || m.VMs[0].Name != `db<1>&"x"` || !strings.Contains(m.VMs[0].Errors[0], "no such file") {
		t.Fatalf("webhook: %+v", m)
	}
	msgs, _ = mp.Messages(ctx)
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want the test and the failure", len(msgs))
	}
	if !strings.Contains(msgs[0].Subject, "failure: job nightly") || !strings.Contains(msgs[0].Text, "disk 0: open /vm/db.img: no such file or directory") ||
		!strings.Contains(msgs[0].Text, `db<1>&"x"`) {
		t.Fatalf("failure e-mail: %q\n%s", msgs[0].Subject, msgs[0].Text)
	}
	select {
	case b := <-hook.bad:
		t.Fatal(b)
	default:
	}
	if len(hook.got) != 0 {
		t.Fatal("success was sent")
	}
}

// TestEndToEndSMTPDownThenUp: the SMTP server is down when a job fails;
// the message stays pending over a restart of the notifier (a new store
// on the same database) and is delivered once the server is up, by
// implicit TLS.
func TestEndToEndSMTPDownThenUp(t *testing.T) {
	ctx := context.Background()
	smtptest.Require(t)
	port := smtptest.FreePort(t)
	dir := t.TempDir()
	clk := clock.NewFake(clock.Real().Now())
	pol := retry.Policy{Attempts: 5, Initial: time.Minute, Max: time.Minute}
	s := openStore(t, clk, dir)
	target := mailTarget(&smtptest.Server{}, port, true)
	addTarget(t, s, target, mailPassword)
	if _, err := s.CreateJob(ctx, configdb.Job{Name: "nightly", Definition: []byte(`{"notify":[{"target":"ops-mail"}]}`)}); err != nil {
		t.Fatal(err)
	}
	se, _ := s.CreateSession(ctx, "nightly", "backup")
	if _, err := s.UpdateSession(ctx, se.ID, configdb.StateFailed, failedResult()); err != nil {
		t.Fatal(err)
	}
	_ = New(Options{Store: s, Clock: clk, Retry: pol}).Step(ctx)
	list, _ := s.ListNotifications(ctx, configdb.NotificationFilter{})
	if len(list) != 1 || list[0].State != configdb.NotificationPending || !strings.Contains(list[0].LastError, "refused") {
		t.Fatalf("while down: %+v", list)
	}
	s.Close()

	// "Restart": mailpit comes up on the port; the target's CA is its.
	mp := smtptest.Start(t, smtptest.Options{User: "holdfast", Password: mailPassword, Implicit: true, Port: port})
	s2 := openStore(t, clk, dir)
	target = mailTarget(mp, port, true)
	if err := Validate(&target); err != nil {
		t.Fatal(err)
	}
	st, _ := s2.GetNotificationTarget(ctx, "ops-mail")
	if _, err := s2.UpdateNotificationTarget(ctx, ToStore(target, st.Secret)); err != nil {
		t.Fatal(err)
	}
	n := New(Options{Store: s2, Clock: clk, Retry: pol})
	_ = n.Step(ctx)
	if msgs, _ := mp.Messages(ctx); len(msgs) != 0 {
		t.Fatal("retried before the backoff")
	}
	clk.Advance(2 * time.Minute)
	if err := n.Step(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err := mp.Messages(ctx)
	if err != nil || len(msgs) != 1 || !strings.Contains(msgs[0].Text, "no such file or directory") {
		t.Fatalf("after restart: %+v %v", msgs, err)
	}
	got, _ := s2.GetNotification(ctx, list[0].ID)
	if got.State != configdb.NotificationDelivered || got.Attempts != 2 {
		t.Fatalf("outbox: %+v", got)
	}
}
