package pki

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/tlsconf"
)

// Trust is what a peer needs to verify others: the CA certificate and a
// clock. The server gets it from its CA (CA.Trust); an agent from the CA PEM
// it received when it joined (NewTrust).
type Trust struct {
	pool *x509.CertPool
	now  func() time.Time
}

// NewTrust trusts the CA certificate in caPEM only, checking validity on
// clk (nil: the real clock).
func NewTrust(caPEM []byte, clk clock.Clock) (*Trust, error) {
	cert, err := ParseCertificatePEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("%w (%w)", err, ErrInvalidCA)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: trusted certificate %q is not a CA: %w", cert.Subject, ErrInvalidCA)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &Trust{pool: pool, now: clock.Or(clk).Now}, nil
}

// Trust returns the CA's trust: this CA only, with the CA's clock.
func (ca *CA) Trust() *Trust { return &Trust{pool: ca.pool, now: ca.now} }

// ServerTLSConfig is (*Trust).ServerTLSConfig with this CA's trust.
func (ca *CA) ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return ca.Trust().ServerTLSConfig(cert)
}

// ClientTLSConfig is (*Trust).ClientTLSConfig with this CA's trust.
func (ca *CA) ClientTLSConfig(cert *tls.Certificate, peerRole, peerName string) *tls.Config {
	return ca.Trust().ClientTLSConfig(cert, peerRole, peerName)
}

// ServerTLSConfig is a listener config presenting cert (ALPN is left to the
// HTTP server, which adds h2). A client certificate
// is optional (tls.VerifyClientCertIfGiven) but, when sent, must chain to this
// CA and be valid now, or the handshake fails. Agent endpoints then call
// RequireRole (or wrap handlers in RequireAgent); token-authenticated
// endpoints ignore it. For a listener that only agents may use, set
// ClientAuth to tls.RequireAndVerifyClientCert on the result.
func (t *Trust) ServerTLSConfig(cert tls.Certificate) *tls.Config {
	cfg := tlsconf.Base()
	cfg.Certificates = []tls.Certificate{cert}
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	cfg.ClientCAs = t.pool.Clone()
	cfg.Time = t.now
	return cfg
}

// ClientTLSConfig is a dialer config that presents cert (nil: none) and
// accepts only a peer whose certificate chains to this CA, is valid now, has
// ServerAuth, and names peerRole (and peerName, unless empty) in its holdfast
// URI SAN. The peer's host name is not checked: the identity replaces it, so
// agents reached by IP address or through NAT verify alike.
func (t *Trust) ClientTLSConfig(cert *tls.Certificate, peerRole, peerName string) *tls.Config {
	cfg := tlsconf.Base()
	cfg.RootCAs = t.pool.Clone()
	cfg.Time = t.now
	// The standard host-name verification is replaced, not dropped:
	// VerifyConnection verifies the chain and the identity.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		return t.verifyServer(cs, peerRole, peerName)
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return cfg
}

func (t *Trust) verifyServer(cs tls.ConnectionState, wantRole, wantName string) error {
	if len(cs.PeerCertificates) == 0 {
		return ErrNoPeerCertificate
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: t.pool, Intermediates: inter, CurrentTime: t.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("pki: peer certificate: %w", err)
	}
	role, name, err := certIdentity(leaf)
	if err != nil {
		return err
	}
	if role != wantRole || (wantName != "" && name != wantName) {
		return fmt.Errorf("%w: peer is %s %q, want %s %q", ErrWrongRole, role, name, wantRole, wantName)
	}
	return nil
}
