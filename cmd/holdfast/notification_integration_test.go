package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/notify"
	"github.com/holdfast-backup/holdfast/internal/testutil/smtptest"
)

// waitMail waits until mailpit holds a message whose subject contains
// subject, and returns it.
func waitMail(t *testing.T, mp *smtptest.Server, subject string) smtptest.Message {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		msgs, err := mp.Messages(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if strings.Contains(m.Subject, subject) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no e-mail with subject %q; have %+v", subject, msgs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNotificationsEndToEnd runs the real binaries (server, proxy,
// repository agent) with a real SMTP server (mailpit: STARTTLS and login
// required) and a TLS webhook receiver that checks the signature:
// notification add/list/test (down, up, wrong password not echoed), a
// failing job sends e-mail and webhook with the reason, a successful one
// sends nothing by default, and a message queued while the SMTP server is
// down survives a server kill and is delivered once both are back.
func TestNotificationsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	smtptest.Require(t)
	const mailPW = "Mail-Pa55-word"
	cert, port := smtptest.NewCert(t), smtptest.FreePort(t)
	hooks := make(chan notify.Message, 10)
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !notify.Verify([]byte("hook-key"), body, r.Header.Get(notify.SignatureHeader)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var m notify.Message
		_ = json.Unmarshal(body, &m)
		hooks <- m
	}))
	defer hook.Close()

	c := newCluster(t, "")
	dir := c.e.dir
	c.kill(c.server) // restart with a short delivery retry
	c.serverArgs = []string{"--notify-retry", "500ms"}
	c.startServer()
	reach := filepath.Join(dir, "reach")
	files := map[string][]byte{
		"mail-ca.pem": cert.CertPEM, "mail.pw": []byte(mailPW + "\n"), "wrong.pw": []byte("Not-The-Pa55\n"),
		"hook-ca.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hook.Certificate().Raw}),
		"hook.key":    []byte("hook-key"), "repo.pw": []byte("correct horse\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(reach, 0o755); err != nil {
		t.Fatal(err)
	}
	c.addRepository("repo1", 2, nil)
	c.addProxy("proxy1", 2, "--reach", reach+"/")
	c.waitAgents("repo1", "proxy1")

	smtpArgs := func(name, pwFile string) []string {
		return []string{"notification", "add", "smtp", name, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
			"--from", "holdfast@example.com", "--to", "ops@example.com", "--username", "holdfast",
			"--password-file", filepath.Join(dir, pwFile), "--ca-file", filepath.Join(dir, "mail-ca.pem")}
	}
	c.e.ok(smtpArgs("ops", "mail.pw")...)
	c.e.ok(smtpArgs("bad", "wrong.pw")...)
	c.e.ok("notification", "add", "webhook", "chat", "--url", hook.URL+"/hook", "--secret-file", filepath.Join(dir, "hook.key"),
		"--ca-file", filepath.Join(dir, "hook-ca.pem"))
	if r := c.e.run("notification", "add", "webhook", "plain", "--url", "http://127.0.0.1:1/x"); r.code != exitFailure ||
		!strings.Contains(r.stderr, "give insecure") {
		t.Errorf("plain http webhook: exit %d %s", r.code, r.stderr)
	}
	if out := c.e.ok("notification", "list"); !strings.Contains(out, "ops") || !strings.Contains(out, "(starttls)") || strings.Contains(out, mailPW) {
		t.Errorf("notification list:\n%s", out)
	}

	// The test button: SMTP down, then up, then a wrong password.
	if r := c.e.run("notification", "test", "ops"); r.code == 0 || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("test while down: exit %d %s", r.code, r.stderr)
	}
	mp := smtptest.Start(t, smtptest.Options{User: "holdfast", Password: mailPW, Port: port, Cert: cert})
	c.e.ok("notification", "test", "ops")
	waitMail(t, mp, "test message to notification target ops")
	r := c.e.run("notification", "test", "bad")
	if r.code == 0 || !strings.Contains(r.stderr, "authentication as holdfast") || !strings.Contains(r.stderr, "535") ||
		strings.Contains(r.stderr+r.stdout, "Not-The-Pa55") {
		t.Errorf("wrong password: exit %d %s", r.code, r.stderr)
	}
	t.Logf("wrong password: %s", strings.TrimSpace(r.stderr))

	// A successful job with the default rule: nothing; a failing one:
	// e-mail and webhook with the reason.
	img := filepath.Join(reach, "good.img")
	writeImage(t, img, 1<<20, map[int64][]byte{0: randomBytes(1 << 20)})
	pw := filepath.Join(dir, "repo.pw")
	c.e.ok("job", "create", "good", "--repository", "repo1", "--password-file", pw, "--vm", "good="+img, "--notify", "ops")
	c.e.ok("job", "create", "lost", "--repository", "repo1", "--password-file", pw,
		"--vm", "lost="+filepath.Join(reach, "missing.img"), "--notify", "ops", "--notify", "chat:failure")
	if out := c.e.ok("job", "show", "lost"); !strings.Contains(out, "ops:failure,warning chat:failure") {
		t.Errorf("job show:\n%s", out)
	}
	if res := c.runJob("good"); res.Status != "success" {
		t.Fatalf("good: %+v", res)
	}
	failed := c.runJobAny("lost")
	if failed.Status != "failed" {
		t.Fatalf("lost: %+v", failed)
	}
	sid := strconv.FormatInt(failed.Session, 10)
	m := waitMail(t, mp, "failure: job lost, session "+sid)
	if !strings.Contains(m.Text, "missing.img") || !strings.Contains(m.Text, "- lost: failure") {
		t.Errorf("failure e-mail:\n%s", m.Text)
	}
	var got notify.Message
	select {
	case got = <-hooks:
	case <-time.After(2 * time.Minute):
		t.Fatal("no webhook call for the failed session")
	}
	if got.Session != failed.Session || got.Result != "failure" || len(got.VMs) != 1 || !strings.Contains(strings.Join(got.VMs[0].Errors, " "), "missing.img") {
		t.Errorf("webhook: %+v", got)
	}
	if msgs, _ := mp.Messages(context.Background()); len(msgs) != 2 { // the test and the failure: not the success
		t.Errorf("%d e-mails, want 2", len(msgs))
	}

	// SMTP down: the failure stays queued, over a server kill, and goes
	// out once SMTP is back.
	mp.Stop()
	failed2 := c.runJobAny("lost")
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(c.e.ok("notification", "show", "ops"), "connection refused (retry at") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt logged:\n%s", c.e.ok("notification", "show", "ops"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.kill(c.server)
	mp2 := smtptest.Start(t, smtptest.Options{User: "holdfast", Password: mailPW, Port: port, Cert: cert})
	c.startServer()
	waitMail(t, mp2, "failure: job lost, session "+strconv.FormatInt(failed2.Session, 10))
	show := c.e.ok("notification", "show", "ops")
	if !strings.Contains(show, "failure of session "+strconv.FormatInt(failed2.Session, 10)) || strings.Contains(show, mailPW) {
		t.Errorf("notification show:\n%s", show)
	}
	t.Logf("notification show ops:\n%s", show)
}
