package notify

import (
	"bytes"
	"encoding/json"
	"net/mail"
	"strings"
	"testing"
	"unicode"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/orchestrator"
)

// FuzzMessage: whatever a session's job name, VM names and error text
// hold (and whatever its result document is), the e-mail parses with
// exactly its own headers and its text has no control character but line
// ends.
func FuzzMessage(f *testing.F) {
	f.Add("nightly", "vm1", "disk 0: no such file", []byte(`{"vms":[{"name":"x"}]}`))
	f.Add("j\r\nBcc: a@b.c", "vm\x1b[2J", "e\n\x00\u202e", []byte(`{`))
	f.Add("", "\xff\xfe", "\r", []byte(`null`))
	f.Fuzz(func(t *testing.T, job, vm, errText string, raw []byte) {
		res := orchestrator.Result{Error: errText, VMs: []orchestrator.VMResult{{Name: vm, Status: configdb.StateFailed, Errors: []string{errText}}}}
		b, _ := json.Marshal(res)
		if json.Valid(raw) && len(raw) > 0 && raw[0] == '{' {
			b = raw
		}
		m := SessionMessage(configdb.Session{ID: 1, JobName: job, Kind: "backup", State: configdb.StateFailed, Result: b})
		for _, r := range m.Text() {
			if r != '\n' && (unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r)) {
				t.Fatalf("text holds %U: %q", r, m.Text())
			}
		}
		c := &apitypes.SMTPConfig{From: "b@example.com", To: []string{"o@example.com"}}
		msg, err := mail.ReadMessage(bytes.NewReader(emailBytes(c, m, t0)))
		if err != nil {
			t.Fatalf("e-mail does not parse: %v", err)
		}
		want := []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To", "X-Holdfast-Event"}
		var got []string
		for k := range msg.Header {
			got = append(got, k)
		}
		if len(got) != len(want) {
			t.Fatalf("headers %v, want %v", got, want)
		}
		if strings.ContainsAny(msg.Header.Get("Subject"), "\r\n") {
			t.Fatalf("subject %q", msg.Header.Get("Subject"))
		}
	})
}
