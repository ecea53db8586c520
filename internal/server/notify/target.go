package notify

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
)

// ErrInvalid is wrapped by every error refusing a target definition.
var ErrInvalid = errors.New("invalid notification target")

// Target kinds.
const (
	KindSMTP    = "smtp"
	KindWebhook = "webhook"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Validate checks a target definition and fills defaults (SMTP port and
// TLS mode). Plain SMTP and http webhooks need Insecure.
func Validate(t *apitypes.NotificationTarget) error {
	if err := jobdef.CheckTargetName(t.Name); err != nil {
		return invalid("%v", err)
	}
	if t.SummaryAt != "" {
		if _, err := time.Parse("15:04", t.SummaryAt); err != nil || len(t.SummaryAt) != 5 {
			return invalid("summary_at %q: want HH:MM (UTC)", t.SummaryAt)
		}
	}
	switch t.Kind {
	case KindSMTP:
		if t.SMTP == nil || t.Webhook != nil {
			return invalid("an smtp target needs smtp settings, no webhook")
		}
		return validateSMTP(t.SMTP)
	case KindWebhook:
		if t.Webhook == nil || t.SMTP != nil {
			return invalid("a webhook target needs webhook settings, no smtp")
		}
		return validateWebhook(t.Webhook)
	}
	return invalid("kind %q: want %s or %s", t.Kind, KindSMTP, KindWebhook)
}

func validateSMTP(c *apitypes.SMTPConfig) error {
	if c.Host == "" || strings.ContainsAny(c.Host, " /:\r\n") && net.ParseIP(c.Host) == nil {
		return invalid("smtp host %q: want a host name or address", c.Host)
	}
	switch c.TLS {
	case "":
		c.TLS = apitypes.TLSStartTLS
	case apitypes.TLSStartTLS, apitypes.TLSImplicit:
	case apitypes.TLSNone:
		if !c.Insecure {
			return invalid("smtp tls none sends the password and messages in clear: give insecure to allow it")
		}
	default:
		return invalid("smtp tls %q: want %s, %s or %s", c.TLS, apitypes.TLSStartTLS, apitypes.TLSImplicit, apitypes.TLSNone)
	}
	if c.Port == 0 {
		c.Port = map[string]int{apitypes.TLSStartTLS: 587, apitypes.TLSImplicit: 465, apitypes.TLSNone: 25}[c.TLS]
	}
	if c.Port < 1 || c.Port > 65535 {
		return invalid("smtp port %d: want 1 to 65535", c.Port)
	}
	if err := checkAddress("from", c.From); err != nil {
		return err
	}
	if len(c.To) == 0 {
		return invalid("smtp: no recipient (to)")
	}
	for _, to := range c.To {
		if err := checkAddress("to", to); err != nil {
			return err
		}
	}
	if strings.ContainsAny(c.Username, "\r\n") {
		return invalid("smtp username holds a line break")
	}
	return checkCA(c.CAPEM)
}

// checkAddress accepts a bare address (user@host) only, so that no header
// can be injected through it.
func checkAddress(field, addr string) error {
	a, err := mail.ParseAddress(addr)
	if err != nil || a.Address != addr || strings.ContainsAny(addr, "\r\n<>,") {
		return invalid("smtp %s %q: want one address such as backup@example.com", field, addr)
	}
	return nil
}

func checkCA(pemText string) error {
	if pemText == "" {
		return nil
	}
	if !x509.NewCertPool().AppendCertsFromPEM([]byte(pemText)) {
		return invalid("ca_pem holds no PEM certificate")
	}
	return nil
}

func validateWebhook(c *apitypes.WebhookConfig) error {
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" {
		return invalid("webhook url %q: want https://host/path", c.URL)
	}
	if u.User != nil {
		return invalid("webhook url: credentials in the URL would be shown; use the target's secret (HMAC) instead")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !c.Insecure {
			return invalid("webhook url %q: plain http sends messages in clear: give insecure to allow it", c.URL)
		}
	default:
		return invalid("webhook url %q: want https (or http with insecure)", c.URL)
	}
	if c.CAPEM != "" && u.Scheme != "https" {
		return invalid("webhook ca_pem needs an https url")
	}
	return checkCA(c.CAPEM)
}

// FromStore turns a stored target into its API form (no secret value).
func FromStore(t configdb.NotificationTarget) (apitypes.NotificationTarget, error) {
	out := apitypes.NotificationTarget{Name: t.Name, Kind: t.Kind, SummaryAt: t.SummaryAt, HasSecret: t.Secret != "",
		Created: t.Created, Updated: t.Updated}
	var err error
	switch t.Kind {
	case KindSMTP:
		out.SMTP = &apitypes.SMTPConfig{}
		err = json.Unmarshal(t.Config, out.SMTP)
	case KindWebhook:
		out.Webhook = &apitypes.WebhookConfig{}
		err = json.Unmarshal(t.Config, out.Webhook)
	default:
		err = fmt.Errorf("unknown kind %q", t.Kind)
	}
	if err != nil {
		return out, fmt.Errorf("notification target %s: %w", t.Name, err)
	}
	return out, nil
}

// ToStore turns a validated API target into its stored form; secret is
// the name of its sealed secret ("" for none).
func ToStore(t apitypes.NotificationTarget, secret string) configdb.NotificationTarget {
	var cfg []byte
	if t.SMTP != nil {
		cfg, _ = json.Marshal(t.SMTP)
	} else {
		cfg, _ = json.Marshal(t.Webhook)
	}
	return configdb.NotificationTarget{Name: t.Name, Kind: t.Kind, Config: cfg, Secret: secret, SummaryAt: t.SummaryAt}
}

// endpoint is the target's address for messages: host:port or the URL.
func endpoint(t apitypes.NotificationTarget) string {
	if t.SMTP != nil {
		return net.JoinHostPort(t.SMTP.Host, strconv.Itoa(t.SMTP.Port))
	}
	if t.Webhook != nil {
		return t.Webhook.URL
	}
	return ""
}
