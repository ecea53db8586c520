package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// Credentials are what an agent received when it joined, plus its key.
type Credentials struct {
	CertPEM []byte // the agent's certificate, issued by the server's CA
	KeyPEM  []byte // the agent's private key (PKCS#8)
	CAPEM   []byte // the server's CA certificate
}

// Certificate returns the agent's key pair.
func (c *Credentials) Certificate() (tls.Certificate, error) {
	cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("agent: certificate and key do not match: %w", err)
	}
	return cert, nil
}

// Trust returns the trust in the server's CA.
func (c *Credentials) Trust() (*pki.Trust, error) { return pki.NewTrust(c.CAPEM, nil) }

// Identity checks that the certificate chains to the CA and returns the
// role and name it carries.
func (c *Credentials) Identity() (role, name string, err error) {
	leaf, err := pki.ParseCertificatePEM(c.CertPEM)
	if err != nil {
		return "", "", err
	}
	ca, err := pki.ParseCertificatePEM(c.CAPEM)
	if err != nil {
		return "", "", err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return "", "", fmt.Errorf("agent: certificate: %w", err)
	}
	return pki.PeerIdentity(&tls.ConnectionState{VerifiedChains: chains})
}

// ServerTLSConfig is a listener configuration presenting the agent's
// certificate that requires client certificates from the server's CA.
func (c *Credentials) ServerTLSConfig() (*tls.Config, error) {
	cert, err := c.Certificate()
	if err != nil {
		return nil, err
	}
	trust, err := c.Trust()
	if err != nil {
		return nil, err
	}
	cfg := trust.ServerTLSConfig(cert)
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	return cfg, nil
}
