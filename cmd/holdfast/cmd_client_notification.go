package main

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Environment variables that may carry a target's secret (never argv).
const (
	envSMTPPassword  = "HOLDFAST_SMTP_PASSWORD"
	envWebhookSecret = "HOLDFAST_WEBHOOK_SECRET"
)

func newNotificationCommand(a *app) *cobra.Command {
	o := &clientOptions{}
	c := &cobra.Command{Use: "notification", Short: "Notification targets (e-mail, webhooks) on the server: add, list, show, remove, test", Args: noArgs}
	addClientFlags(c, o)
	c.AddCommand(newNotificationAdd(a, o), newNotificationList(a, o), newNotificationShow(a, o),
		newNotificationRemove(a, o), newNotificationTest(a, o))
	return c
}

func notificationPath(name, suffix string) string {
	return "/api/v1/notifications/" + url.PathEscape(name) + suffix
}

// notificationFlags are the flags of `notification add`.
type notificationFlags struct {
	host, tlsMode, from, username, caFile string
	port                                  int
	to                                    []string
	url                                   string
	insecure                              bool
	secretFile, summaryAt                 string
}

func newNotificationAdd(a *app, o *clientOptions) *cobra.Command {
	var f notificationFlags
	c := &cobra.Command{
		Use:   "add smtp|webhook NAME …",
		Short: "Add a notification target: an SMTP server and recipients, or a webhook URL",
		Long: `Add a notification target jobs send to (job create/edit --notify NAME[:failure,warning,success]).

  holdfast notification add smtp ops-mail --host mail.example.com [--port 587] [--tls starttls|implicit] \
      --from backup@example.com --to ops@example.com [--to …] [--username U --password-file F] [--ca-file CA]
  holdfast notification add webhook chat --url https://hooks.example.com/x [--secret-file F] [--ca-file CA]

STARTTLS is required by default (--tls implicit: TLS from the first byte);
--tls none and http:// webhooks need --insecure. The SMTP password comes from
--password-file or $` + envSMTPPassword + `, the webhook's HMAC key from
--secret-file or $` + envWebhookSecret + ` — never from the command line. The server
seals it and never shows it again; webhooks carry X-Holdfast-Signature:
sha256=HMAC-SHA256(key, body). --summary-at HH:MM (UTC) sends a daily
summary of the last 24 h at that time.`,
		Args: exactArgs(2),
	}
	f.register(c.Flags())
	c.RunE = func(cmd *cobra.Command, args []string) error {
		req, err := f.request(a, args[0], args[1], cmd.Flags().Changed)
		if err != nil {
			return err
		}
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		var out apitypes.NotificationTarget
		if err := cl.call(cmd.Context(), "POST", "/api/v1/notifications", "add notification targets", req, &out); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "added notification target %s (%s)\n", out.Name, out.Kind)
		return err
	}
	return c
}

func (f *notificationFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.host, "host", "", "smtp: server host")
	fs.IntVar(&f.port, "port", 0, "smtp: server port (default 587 for starttls, 465 for implicit, 25 for none)")
	fs.StringVar(&f.tlsMode, "tls", apitypes.TLSStartTLS, "smtp: starttls (required), implicit or none (needs --insecure)")
	fs.StringVar(&f.from, "from", "", "smtp: sender address")
	fs.StringArrayVar(&f.to, "to", nil, "smtp: recipient address (repeat for more)")
	fs.StringVar(&f.username, "username", "", "smtp: user to log in as")
	fs.StringVar(&f.secretFile, "password-file", "", "smtp: file holding the password (or $"+envSMTPPassword+")")
	fs.StringVar(&f.url, "url", "", "webhook: https URL")
	fs.StringVar(&f.secretFile, "secret-file", "", "webhook: file holding the HMAC key (or $"+envWebhookSecret+")")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM CA certificate(s) to trust for the server instead of the system's")
	fs.BoolVar(&f.insecure, "insecure", false, "allow SMTP without TLS or an http:// webhook")
	fs.StringVar(&f.summaryAt, "summary-at", "", "send a daily summary at HH:MM (UTC)")
}

// request builds the add request; flags of the other kind are refused.
func (f *notificationFlags) request(a *app, kind, name string, changed func(string) bool) (apitypes.NotificationTargetRequest, error) {
	req := apitypes.NotificationTargetRequest{NotificationTarget: apitypes.NotificationTarget{Name: name, Kind: kind, SummaryAt: f.summaryAt}}
	ca := ""
	if f.caFile != "" {
		b, err := os.ReadFile(f.caFile)
		if err != nil {
			return req, fmt.Errorf("--ca-file: %w", err)
		}
		ca = string(b)
	}
	smtpOnly := []string{"host", "port", "tls", "from", "to", "username", "password-file"}
	hookOnly := []string{"url", "secret-file"}
	var env string
	switch kind {
	case "smtp":
		if err := refuseFlags(changed, hookOnly, "smtp"); err != nil {
			return req, err
		}
		req.SMTP = &apitypes.SMTPConfig{Host: f.host, Port: f.port, TLS: f.tlsMode, CAPEM: ca, Insecure: f.insecure,
			From: f.from, To: f.to, Username: f.username}
		env = envSMTPPassword
	case "webhook":
		if err := refuseFlags(changed, smtpOnly, "webhook"); err != nil {
			return req, err
		}
		req.Webhook = &apitypes.WebhookConfig{URL: f.url, CAPEM: ca, Insecure: f.insecure}
		env = envWebhookSecret
	default:
		return req, usageError{fmt.Errorf("notification kind %q: want smtp or webhook", kind)}
	}
	secret := a.getenv(env)
	if f.secretFile != "" {
		b, err := os.ReadFile(f.secretFile)
		if err != nil {
			return req, fmt.Errorf("secret file: %w", err)
		}
		secret = strings.TrimRight(string(b), "\r\n")
	}
	req.Secret = secret
	return req, nil
}

func refuseFlags(changed func(string) bool, names []string, kind string) error {
	for _, n := range names {
		if changed(n) {
			return usageError{fmt.Errorf("--%s is not for a %s target", n, kind)}
		}
	}
	return nil
}

func newNotificationList(a *app, o *clientOptions) *cobra.Command {
	return newListCommand(a, o, listSpec[apitypes.NotificationTarget]{
		short: "List notification targets", path: "/api/v1/notifications", what: "list notification targets",
		header: []string{"NAME", "KIND", "ENDPOINT", "SUMMARY", "SECRET"},
		row: func(t apitypes.NotificationTarget) []string {
			return []string{t.Name, t.Kind, targetEndpoint(t), orDash(t.SummaryAt), yesNo(t.HasSecret)}
		},
	})
}

func targetEndpoint(t apitypes.NotificationTarget) string {
	switch {
	case t.SMTP != nil:
		return fmt.Sprintf("%s:%d (%s) → %s", t.SMTP.Host, t.SMTP.Port, t.SMTP.TLS, strings.Join(t.SMTP.To, ", "))
	case t.Webhook != nil:
		return t.Webhook.URL
	}
	return "-"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func newNotificationShow(a *app, o *clientOptions) *cobra.Command {
	var limit int
	c := &cobra.Command{Use: "show NAME", Short: "Show a notification target and its recent messages with their delivery log", Args: exactArgs(1)}
	c.Flags().IntVar(&limit, "limit", 20, "messages to show")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		var t apitypes.NotificationTarget
		if err := cl.call(cmd.Context(), "GET", notificationPath(args[0], ""), "read notification targets", nil, &t); err != nil {
			return err
		}
		rows := [][]string{{"Name:", t.Name}, {"Kind:", t.Kind}, {"Endpoint:", targetEndpoint(t)},
			{"Daily summary:", orDash(t.SummaryAt)}, {"Secret:", map[bool]string{true: "sealed on the server", false: "none"}[t.HasSecret]}}
		if err := table(a.stdout, rows[0], rows[1:]); err != nil {
			return err
		}
		var ns []apitypes.Notification
		q := "/api/v1/notification-outbox?target=" + url.QueryEscape(args[0]) + "&limit=" + strconv.Itoa(limit)
		if err := cl.call(cmd.Context(), "GET", q, "read notifications", nil, &ns); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "\nMessages (%d, newest first):\n", len(ns))
		for _, n := range ns {
			var full apitypes.Notification
			if err := cl.call(cmd.Context(), "GET", "/api/v1/notification-outbox/"+strconv.FormatInt(n.ID, 10), "read notifications", nil, &full); err != nil {
				return err
			}
			printNotification(a, full)
		}
		return nil
	}
	return c
}

func printNotification(a *app, n apitypes.Notification) {
	about := n.Event
	if n.Session != 0 {
		about += " of session " + strconv.FormatInt(n.Session, 10)
	}
	state := n.State
	if n.NextAt != nil {
		state += ", next attempt " + n.NextAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(a.stdout, "#%d %s %s: %s after %d attempt(s)\n", n.ID, n.Created.UTC().Format(time.RFC3339), about, state, n.Attempts)
	for _, l := range n.Log {
		fmt.Fprintf(a.stdout, "    %s\n", l)
	}
}

func newNotificationRemove(a *app, o *clientOptions) *cobra.Command {
	c := &cobra.Command{Use: "remove NAME", Short: "Remove a notification target (and its sealed secret)", Args: exactArgs(1)}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		if err := cl.call(cmd.Context(), "DELETE", notificationPath(args[0], ""), "remove notification targets", nil, nil); err != nil {
			return err
		}
		_, err = fmt.Fprintf(a.stdout, "removed notification target %s\n", args[0])
		return err
	}
	return c
}

// errNotDelivered fails `notification test` when the message did not go.
var errNotDelivered = errors.New("test message not delivered")

func newNotificationTest(a *app, o *clientOptions) *cobra.Command {
	c := &cobra.Command{Use: "test NAME", Short: "Send a test message now and report the SMTP or HTTP error", Args: exactArgs(1)}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := a.client(o)
		if err != nil {
			return err
		}
		var res apitypes.NotificationTest
		if err := cl.call(cmd.Context(), "POST", notificationPath(args[0], "/test"), "test notification targets", nil, &res); err != nil {
			return err
		}
		if !res.Delivered {
			return fmt.Errorf("%w to %s: %s", errNotDelivered, args[0], res.Error)
		}
		_, err = fmt.Fprintf(a.stdout, "test message delivered to %s\n", args[0])
		return err
	}
	return c
}
