package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

// RoleSessionClient is the role of a client certificate NewSessionCA's
// IssueClient makes: the holder of one session's secret.
const RoleSessionClient = "session-client"

// NewSessionCA returns a CA that lives in memory only, for the credentials
// of one session (an Instant VM Recovery session's NBD exports): its key is
// never written anywhere, and the CA is dropped once it has issued them, so
// it can issue nothing more. It and its certificates are valid for validity.
// Nothing else trusts it: a certificate it issues opens only the exports
// that were given its CA certificate.
func NewSessionCA(name string, validity time.Duration, opts ...Option) (*CA, error) {
	ca, err := newCA("", append(opts, WithLeafValidity(validity)))
	if err != nil {
		return nil, err
	}
	der, key, err := ca.generate(name, validity)
	if err != nil {
		return nil, err
	}
	if err := ca.set(der, encodeCert(der), key); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return ca, nil
}

// IssueClient issues a TLS client certificate for name with a new key
// (returned in KeyPEM: the secret the requester gets).
func (ca *CA) IssueClient(name string) (*Issued, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	tmpl, err := ca.leafTemplate(RoleSessionClient, name, nil)
	if err != nil {
		return nil, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign client certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return &Issued{CertPEM: encodeCert(der), KeyPEM: keyPEM, CAPEM: ca.CertPEM(),
		Fingerprint: Fingerprint(leaf), NotAfter: leaf.NotAfter}, nil
}

// WriteNew writes a credential file that must not exist yet (created with
// perm, synced); an existing file is left alone and fs.ErrExist returned.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	return writeExclusive(path, data, perm)
}
