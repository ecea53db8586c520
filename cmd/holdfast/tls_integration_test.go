package main

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// cbcOnlyClient is a TLS 1.2 client configuration offering only CBC suites.
func cbcOnlyClient(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true, CipherSuites: []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA}}
}

// TestListenersRefuseCBC: the server's API listener and a repository
// agent's data mover listener refuse a TLS 1.2 client offering only CBC
// suites, and accept one offering AES-GCM.
func TestListenersRefuseCBC(t *testing.T) {
	s := startTestServer(t)
	e := clientEnv(t, s, s.admin)
	e.init()
	tok := strings.TrimSpace(e.ok("repository", "token"))
	start := time.Now()
	p := startAgent(t, e, "repository", "--name", "repo1", "--path", e.repo, "--join-token", tok, "--listen", "127.0.0.1:0")
	defer p.stop(t)
	moverAddr := waitHeartbeat(t, e, p, "repo1", start).Address
	pem, err := os.ReadFile(s.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	gcm := &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
	for _, l := range []struct{ name, addr string }{
		{"server API", strings.TrimPrefix(s.url, "https://")},
		{"repository agent", moverAddr},
	} {
		t.Run(l.name, func(t *testing.T) {
			if err := tlsHandshake(l.addr, cbcOnlyClient(pool)); err == nil {
				t.Fatal("a client offering only CBC suites completed the handshake")
			}
			if l.name == "server API" { // the agent also wants a client certificate
				if err := tlsHandshake(l.addr, gcm); err != nil {
					t.Fatalf("a TLS 1.2 AES-GCM client was refused: %v", err)
				}
			}
		})
	}
}

// tlsHandshake dials addr and completes a TLS handshake with cfg.
func tlsHandshake(addr string, cfg *tls.Config) error {
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	return c.Close()
}
