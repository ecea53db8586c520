package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/pki"
	"github.com/holdfast-backup/holdfast/internal/tlsconf"
)

// ErrRefused is wrapped when the server refuses the agent (401 or 403): a
// join token unknown, expired, already used or for another role, or a
// certificate it no longer knows.
var ErrRefused = errors.New("refused by the server")

// Join enrols the agent name in role with the server at serverURL using the
// one-time joinToken. caPEM is the server's CA certificate to verify the
// server with (nil: the system roots). address is the host:port the agent
// serves on ("" for none) and slots its concurrent task slots.
func Join(ctx context.Context, serverURL string, caPEM []byte, role, name, joinToken, address string, slots int) (*Credentials, error) {
	csrPEM, keyPEM, err := pki.NewCSR(name)
	if err != nil {
		return nil, err
	}
	tc := tlsconf.Base()
	if len(caPEM) > 0 {
		trust, err := pki.NewTrust(caPEM, nil)
		if err != nil {
			return nil, err
		}
		tc = trust.ClientTLSConfig(nil, pki.RoleServer, "")
	}
	body := map[string]any{"token": joinToken, "role": role, "name": name, "csr": string(csrPEM),
		"address": address, "slots": slots}
	var resp struct {
		Certificate string `json:"certificate"`
		CA          string `json:"ca"`
	}
	if err := post(ctx, newHTTPClient(tc), serverURL, "/api/v1/agents/join", body, &resp); err != nil {
		return nil, fmt.Errorf("join %s as %s %s: %w", serverURL, role, name, err)
	}
	c := &Credentials{CertPEM: []byte(resp.Certificate), KeyPEM: keyPEM, CAPEM: []byte(resp.CA)}
	if len(caPEM) > 0 && !bytes.Equal(bytes.TrimSpace(caPEM), bytes.TrimSpace(c.CAPEM)) {
		return nil, fmt.Errorf("join %s: the server answered with another CA than the one given", serverURL)
	}
	if _, err := c.Certificate(); err != nil {
		return nil, err
	}
	if r, n, err := c.Identity(); err != nil || r != role || n != name {
		return nil, fmt.Errorf("join %s: issued certificate is for %s %q (%v), want %s %q", serverURL, r, n, err, role, name)
	}
	return c, nil
}

func newHTTPClient(tc *tls.Config) *http.Client {
	return &http.Client{Timeout: 30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true, Proxy: http.ProxyFromEnvironment}}
}

// post sends body as JSON to serverURL+path and decodes a 2xx answer into out.
func post(ctx context.Context, hc *http.Client, serverURL, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimRight(serverURL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(data, &e)
		err := fmt.Errorf("server answered HTTP %d: %s", resp.StatusCode, e.Error)
		if resp.StatusCode == http.StatusConflict {
			err = fmt.Errorf("%w: %w", errConflict, err)
		}
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			err = fmt.Errorf("%w: %w", ErrRefused, err)
		}
		return err
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	return json.Unmarshal(data, out)
}
