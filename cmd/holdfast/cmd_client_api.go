package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apiclient"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/tlsconf"
	"github.com/spf13/cobra"
)

// clientOptions are the flags of the commands that talk to a holdfast
// server. The token is never printed or logged, and its flag has no
// default shown in --help (it is read from $HOLDFAST_TOKEN at run time).
type clientOptions struct {
	server, token, ca string
}

// addClientFlags adds --server, --token and --ca to a command group.
func addClientFlags(c *cobra.Command, o *clientOptions) {
	pf := c.PersistentFlags()
	pf.StringVar(&o.server, "server", "", "server URL, e.g. https://host:8443 (default $HOLDFAST_SERVER)")
	pf.StringVar(&o.token, "token", "", "API token (default $HOLDFAST_TOKEN)")
	pf.StringVar(&o.ca, "ca", "", "CA certificate (PEM) to verify the server with, e.g. DATA-DIR/ca.pem (default $HOLDFAST_CA, else the system roots)")
}

// apiClient calls the server's REST API under /api/v1 (internal/server/
// apiclient) and words its refusals for the command line.
type apiClient struct {
	*apiclient.Client
}

// client builds the API client from the flags and the environment.
func (a *app) client(o *clientOptions) (*apiClient, error) {
	pick := func(flag, env string) string {
		if flag != "" {
			return flag
		}
		return a.getenv(env)
	}
	server, caFile := pick(o.server, "HOLDFAST_SERVER"), pick(o.ca, "HOLDFAST_CA")
	if server == "" {
		return nil, usageError{errors.New("no server given: use --server URL or set HOLDFAST_SERVER")}
	}
	u, err := url.Parse(server)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, usageError{fmt.Errorf("server %q: want a URL such as https://host:8443", server)}
	}
	tc := tlsconf.Base()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s: no PEM certificates", caFile)
		}
	}
	tr := &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: true}
	hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	return &apiClient{apiclient.New(server, hc, pick(o.token, "HOLDFAST_TOKEN"))}, nil
}

// call sends a request with body (nil: none) encoded as JSON and decodes
// the response into out (nil: ignore; *json.RawMessage: keep as is). What
// names the operation for a 403 message ("create jobs").
func (c *apiClient) call(ctx context.Context, method, path, what string, body, out any) error {
	err := c.Do(ctx, method, path, body, out)
	var ae *apitypes.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return c.statusError(ae, what)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return c.connError(ue.Err)
	}
	return err
}

// connError explains a failed connection, naming the server (never the token).
func (c *apiClient) connError(err error) error {
	var ca x509.UnknownAuthorityError
	switch {
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the server at %s: connection refused (is 'holdfast server' running there?)", c.Base())
	case errors.As(err, &ca):
		return fmt.Errorf("cannot verify the server at %s: its certificate is not signed by a trusted CA (use --ca DATA-DIR/ca.pem or set HOLDFAST_CA)", c.Base())
	}
	return fmt.Errorf("cannot reach the server at %s: %v", c.Base(), err)
}

// statusError words an error answer for the command line. The result
// still matches the apitypes sentinels (errors.Is).
func (c *apiClient) statusError(ae *apitypes.Error, what string) error {
	msg := ae.Message
	switch ae.Status {
	case http.StatusUnauthorized:
		hint := "check --token or HOLDFAST_TOKEN"
		if !c.HasToken() {
			hint = "no token given: use --token or set HOLDFAST_TOKEN"
		}
		msg = fmt.Sprintf("the server refused the token (%s)", hint)
	case http.StatusForbidden:
		msg = fmt.Sprintf("your role may not %s (server: %s)", what, ae.Message)
	case http.StatusBadRequest:
		msg = "the server rejected the request: " + ae.Message
	case http.StatusNotFound, http.StatusConflict:
	default:
		msg = fmt.Sprintf("server %s: HTTP %d: %s", c.Base(), ae.Status, ae.Message)
	}
	return cliAPIError{msg: msg, err: ae}
}

// cliAPIError is an error answer worded for the command line.
type cliAPIError struct {
	msg string
	err *apitypes.Error
}

func (e cliAPIError) Error() string { return e.msg }
func (e cliAPIError) Unwrap() error { return e.err }

// printJSON writes raw JSON indented, with a final newline.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// table writes aligned rows: the header, then each row.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// fmtTime formats an optional API time for tables.
func fmtTime(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// orDash shows empty fields as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
