package notify

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/orchestrator"
)

var t0 = time.Date(2031, 5, 6, 7, 0, 0, 0, time.UTC)

func endedSession(state configdb.State, res orchestrator.Result) configdb.Session {
	b, _ := json.Marshal(res)
	return configdb.Session{ID: 42, JobName: "nightly", Kind: "backup", State: state, Started: t0, Ended: t0.Add(90 * time.Second), Result: b}
}

// TestSessionMessage: the message names the job, result, session and
// each VM with bytes, duration and errors.
func TestSessionMessage(t *testing.T) {
	se := endedSession(configdb.StateFailed, orchestrator.Result{VMs: []orchestrator.VMResult{
		{Name: "web1", Status: configdb.StateSuccess, Point: "p1", Disks: []orchestrator.DiskResult{{BytesRead: 3 << 20, BytesWritten: 1 << 20, Duration: 12}}},
		{Name: "db1", Status: configdb.StateFailed, Errors: []string{"disk 0: open /x: no such file"}},
	}})
	m := SessionMessage(se)
	if m.Result != "failure" || m.Session != 42 || m.Job != "nightly" || len(m.VMs) != 2 || m.VMs[0].BytesRead != 3<<20 {
		t.Fatalf("message: %+v", m)
	}
	if m.Subject != "[Holdfast] failure: job nightly, session 42 (1 of 2 VMs failed)" {
		t.Errorf("subject %q", m.Subject)
	}
	text := m.Text()
	for _, want := range []string{"Result:   failure", "holdfast session show 42", "- web1: success, 3.0 MiB read, 1.0 MiB stored, 12s, point p1",
		"error: disk 0: open /x: no such file", "1m30s"} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, text)
		}
	}
}

// TestEscaping: VM names and error text from outside cannot break lines,
// inject headers or carry terminal escapes, in the text, the e-mail and
// the JSON body.
func TestEscaping(t *testing.T) {
	evil := "vm\r\nBcc: victim@example.com\x1b[31m\u202e"
	se := endedSession(configdb.StateFailed, orchestrator.Result{Error: "boom\r\nX-Injected: 1", VMs: []orchestrator.VMResult{
		{Name: evil, Status: configdb.StateFailed, Errors: []string{"bad\nline\x00"}}}})
	se.JobName = "job\r\nSubject: spoof"
	m := SessionMessage(se)
	text := m.Text()
	for _, bad := range []string{"\r", "\x1b", "\x00", "\u202e", "\nBcc:", "\nX-Injected", "\nline"} {
		if strings.Contains(text, bad) {
			t.Errorf("text holds %q:\n%q", bad, text)
		}
	}
	if !strings.Contains(text, `vm\r\nBcc: victim@example.com\x1b[31m\u202e`) {
		t.Errorf("VM name not escaped visibly:\n%s", text)
	}
	c := &apitypes.SMTPConfig{From: "b@example.com", To: []string{"ops@example.com"}}
	raw := emailBytes(c, m, t0)
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Header["Bcc"]) != 0 || len(msg.Header["X-Injected"]) != 0 || len(msg.Header["Subject"]) != 1 {
		t.Fatalf("header injected: %v", msg.Header)
	}
	subj, err := new(mimeDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || !strings.Contains(subj, `job\r\nSubject: spoof`) {
		t.Errorf("subject %q %v", subj, err)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if !strings.Contains(string(body), `bad\nline\x00`) {
		t.Errorf("body:\n%s", body)
	}
	js, _ := json.Marshal(m)
	var back Message
	if err := json.Unmarshal(js, &back); err != nil || back.VMs[0].Name != evil {
		t.Errorf("JSON round trip: %v %q", err, back.VMs[0].Name)
	}
}

// TestSummaryMessage: sessions by result, failed VMs, and VMs without a
// point newer than 24 h (including a VM that never had one).
func TestSummaryMessage(t *testing.T) {
	to := t0.Add(24 * time.Hour)
	sessions := []configdb.Session{
		endedSession(configdb.StateSuccess, orchestrator.Result{VMs: []orchestrator.VMResult{{Name: "web1", Status: configdb.StateSuccess}}}),
		endedSession(configdb.StateFailed, orchestrator.Result{VMs: []orchestrator.VMResult{{Name: "db1", Status: configdb.StateFailed}}}),
		endedSession(configdb.StateFailed, orchestrator.Result{Error: "server restarted"}),
	}
	last := map[string]time.Time{"web1": to.Add(-time.Hour), "old": to.Add(-48 * time.Hour)}
	m := SummaryMessage(to, sessions, last)
	s := m.Summary
	if s.Sessions["success"] != 1 || s.Sessions["failure"] != 2 || strings.Join(s.FailedVMs, ",") != "db1" ||
		strings.Join(s.NoPointVMs, ",") != "db1,old" {
		t.Fatalf("summary %+v", s)
	}
	if !strings.Contains(m.Subject, "3 sessions, 2 failed, 2 VMs without a point") {
		t.Errorf("subject %q", m.Subject)
	}
	if text := m.Text(); !strings.Contains(text, "failure:  2") || !strings.Contains(text, "without a restore point in the last 24 h (2)") {
		t.Errorf("text:\n%s", text)
	}
}

// TestSignature: the HMAC matches a known vector and Verify refuses a
// changed body or key.
func TestSignature(t *testing.T) {
	// RFC 4231 test case 2.
	if got := Sign([]byte("Jefe"), []byte("what do ya want for nothing?")); got != "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Fatalf("Sign: %s", got)
	}
	sig := Sign([]byte("k"), []byte("body"))
	if !Verify([]byte("k"), []byte("body"), sig) || Verify([]byte("k"), []byte("body2"), sig) || Verify([]byte("k2"), []byte("body"), sig) {
		t.Fatal("Verify")
	}
}

type mimeDecoder = mime.WordDecoder
