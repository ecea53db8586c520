package notify

import (
	"errors"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

func smtpTarget(mod func(*apitypes.SMTPConfig)) apitypes.NotificationTarget {
	c := &apitypes.SMTPConfig{Host: "mail.example.com", From: "backup@example.com", To: []string{"ops@example.com"}}
	if mod != nil {
		mod(c)
	}
	return apitypes.NotificationTarget{Name: "ops", Kind: KindSMTP, SMTP: c}
}

func hookTarget(url string, insecure bool) apitypes.NotificationTarget {
	return apitypes.NotificationTarget{Name: "hook", Kind: KindWebhook, Webhook: &apitypes.WebhookConfig{URL: url, Insecure: insecure}}
}

// TestValidate: TLS is required unless insecure, addresses cannot carry
// headers, webhooks are https, names and summary times are checked.
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		t    apitypes.NotificationTarget
		msg  string // "": valid
	}{
		{"smtp default", smtpTarget(nil), ""},
		{"implicit", smtpTarget(func(c *apitypes.SMTPConfig) { c.TLS = "implicit" }), ""},
		{"plain refused", smtpTarget(func(c *apitypes.SMTPConfig) { c.TLS = "none" }), "give insecure"},
		{"plain insecure", smtpTarget(func(c *apitypes.SMTPConfig) { c.TLS = "none"; c.Insecure = true }), ""},
		{"bad tls", smtpTarget(func(c *apitypes.SMTPConfig) { c.TLS = "ssl" }), `tls "ssl"`},
		{"no host", smtpTarget(func(c *apitypes.SMTPConfig) { c.Host = "" }), "smtp host"},
		{"bad port", smtpTarget(func(c *apitypes.SMTPConfig) { c.Port = 70000 }), "port 70000"},
		{"no to", smtpTarget(func(c *apitypes.SMTPConfig) { c.To = nil }), "no recipient"},
		{"header in to", smtpTarget(func(c *apitypes.SMTPConfig) { c.To = []string{"a@b.c\r\nBcc: x@y.z"} }), "want one address"},
		{"named from", smtpTarget(func(c *apitypes.SMTPConfig) { c.From = "Backup <b@example.com>" }), "want one address"},
		{"two to in one", smtpTarget(func(c *apitypes.SMTPConfig) { c.To = []string{"a@b.c, d@e.f"} }), "want one address"},
		{"bad ca", smtpTarget(func(c *apitypes.SMTPConfig) { c.CAPEM = "nope" }), "no PEM"},
		{"user newline", smtpTarget(func(c *apitypes.SMTPConfig) { c.Username = "a\nb" }), "line break"},
		{"https", hookTarget("https://hooks.example.com/x", false), ""},
		{"http refused", hookTarget("http://hooks.example.com/x", false), "give insecure"},
		{"http insecure", hookTarget("http://hooks.example.com/x", true), ""},
		{"ftp", hookTarget("ftp://hooks.example.com/x", true), "want https"},
		{"userinfo", hookTarget("https://u:p@hooks.example.com/x", false), "credentials in the URL"},
		{"no host url", hookTarget("https:///x", false), "want https://host"},
		{"bad kind", apitypes.NotificationTarget{Name: "x", Kind: "sms"}, `kind "sms"`},
		{"both", apitypes.NotificationTarget{Name: "x", Kind: KindSMTP, SMTP: smtpTarget(nil).SMTP, Webhook: &apitypes.WebhookConfig{}}, "no webhook"},
		{"bad name", apitypes.NotificationTarget{Name: "a b", Kind: KindSMTP, SMTP: smtpTarget(nil).SMTP}, "want letters"},
		{"summary", func() apitypes.NotificationTarget { t := smtpTarget(nil); t.SummaryAt = "07:30"; return t }(), ""},
		{"bad summary", func() apitypes.NotificationTarget { t := smtpTarget(nil); t.SummaryAt = "7:30"; return t }(), "HH:MM"},
		{"bad summary 2", func() apitypes.NotificationTarget { t := smtpTarget(nil); t.SummaryAt = "25:00"; return t }(), "HH:MM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(&tc.t)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want %q", err, tc.msg)
			}
		})
	}
	d := smtpTarget(nil)
	_ = Validate(&d)
	if d.SMTP.Port != 587 || d.SMTP.TLS != "starttls" {
		t.Errorf("defaults: %+v", d.SMTP)
	}
}
