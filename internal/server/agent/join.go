package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apiclient"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
	"github.com/holdfast-backup/holdfast/internal/tlsconf"
)

// ErrRefused matches when the server refuses the agent (401 or 403): a
// join token unknown, expired, already used or for another role, or a
// certificate it no longer knows. It is apitypes.ErrRefused.
var ErrRefused = apitypes.ErrRefused

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
	body := apitypes.JoinRequest{Token: joinToken, Role: role, Name: name, CSR: string(csrPEM),
		Address: address, Slots: slots}
	var resp apitypes.JoinResponse
	cl := apiclient.New(serverURL, newHTTPClient(tc), "")
	if err := cl.Do(ctx, "POST", "/api/v1/agents/join", body, &resp); err != nil {
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
