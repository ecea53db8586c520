package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// tlsConfig trusts caPEM when given, else the system's roots.
func tlsConfig(host, caPEM string) *tls.Config {
	cfg := &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	if caPEM != "" {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM([]byte(caPEM))
		cfg.RootCAs = pool
	}
	return cfg
}

// sendSMTP delivers m by e-mail: TLS as the target says (STARTTLS is
// required in starttls mode, not merely tried), PLAIN authentication when
// a username is set, one message to all recipients.
func sendSMTP(ctx context.Context, c *apitypes.SMTPConfig, password string, m Message, now time.Time) error {
	addr := net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
	d := net.Dialer{Timeout: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = now.Add(2 * time.Minute)
	}
	_ = conn.SetDeadline(deadline)
	if c.TLS == apitypes.TLSImplicit {
		tc := tls.Client(conn, tlsConfig(c.Host, c.CAPEM))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS: %w", err)
		}
		conn = tc
	}
	cl, err := smtp.NewClient(conn, c.Host)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Hello("localhost"); err != nil {
		return err
	}
	if c.TLS == apitypes.TLSStartTLS {
		if ok, _ := cl.Extension("STARTTLS"); !ok {
			return fmt.Errorf("the server %s offers no STARTTLS (tls starttls is required)", addr)
		}
		if err := cl.StartTLS(tlsConfig(c.Host, c.CAPEM)); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if c.Username != "" {
		if err := cl.Auth(plainAuth{user: c.Username, password: password}); err != nil {
			return fmt.Errorf("authentication as %s: %w", c.Username, err)
		}
	}
	if err := cl.Mail(c.From); err != nil {
		return err
	}
	for _, to := range c.To {
		if err := cl.Rcpt(to); err != nil {
			return fmt.Errorf("recipient %s: %w", to, err)
		}
	}
	w, err := cl.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(emailBytes(c, m, now)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return cl.Quit()
}

// plainAuth is PLAIN authentication; unlike smtp.PlainAuth it also works
// over tls none (which Validate allows only with insecure).
type plainAuth struct{ user, password string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.password), nil
}

func (a plainAuth) Next(_ []byte, more bool) ([]byte, error) {
	if more {
		return nil, fmt.Errorf("unexpected server challenge")
	}
	return nil, nil
}

// emailBytes renders the e-mail: headers (subject Q-encoded, with outside
// text made printable so no header can be injected) and a quoted-printable
// UTF-8 text body.
func emailBytes(c *apitypes.SMTPConfig, m Message, now time.Time) []byte {
	var b bytes.Buffer
	var id [12]byte
	_, _ = rand.Read(id[:])
	domain := c.From[strings.LastIndexByte(c.From, '@')+1:]
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", c.From)
	hdr("To", strings.Join(c.To, ", "))
	hdr("Subject", mime.QEncoding.Encode("utf-8", printable(m.Subject)))
	hdr("Date", now.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+hex.EncodeToString(id[:])+"@"+domain+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "text/plain; charset=utf-8")
	hdr("Content-Transfer-Encoding", "quoted-printable")
	hdr("X-Holdfast-Event", m.Event)
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	_, _ = qp.Write([]byte(strings.ReplaceAll(m.Text(), "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}
