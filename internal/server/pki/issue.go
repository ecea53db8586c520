package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"time"
)

// Issued is a certificate issued to an agent, in PEM form.
type Issued struct {
	CertPEM     []byte
	KeyPEM      []byte // empty when the request carried a CSR: the key stayed with the agent
	CAPEM       []byte // the CA certificate the agent must trust
	Fingerprint string // Fingerprint of the certificate, for the agents table
	NotAfter    time.Time
}

// TLSCertificate returns the issued pair as a tls.Certificate; it needs KeyPEM.
func (i *Issued) TLSCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair(i.CertPEM, i.KeyPEM)
}

// IssueServer issues the server's TLS certificate for hosts (DNS names or IP
// addresses; at least one). The first host names it: holdfast:server:HOST.
func (ca *CA) IssueServer(hosts []string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, fmt.Errorf("pki: server certificate needs at least one host")
	}
	name := hosts[0]
	if !ValidName(name) {
		name = RoleServer
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generate key: %w", err)
	}
	tmpl, err := ca.leafTemplate(RoleServer, name, hosts)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} // client: the server calls repository agents
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: sign server certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// IssueAgent issues a certificate for the agent NAME in role (RoleProxy or
// RoleRepository). With csrPEM (from NewCSR) the certificate is for the CSR's
// public key, whose signature is checked; its subject is ignored, the CA
// decides the identity. Without it the CA generates a key and returns it in
// KeyPEM. hosts are optional DNS names or IP addresses the agent serves on.
func (ca *CA) IssueAgent(role, name string, csrPEM []byte, hosts ...string) (*Issued, error) {
	if !validAgentRole(role) {
		return nil, fmt.Errorf("pki: agent role %q: want %q or %q", role, RoleProxy, RoleRepository)
	}
	if !ValidName(name) {
		return nil, fmt.Errorf("pki: agent name %q: want 1-%d characters of [A-Za-z0-9._-]", name, maxNameLen)
	}
	pub, keyPEM, err := agentKey(csrPEM)
	if err != nil {
		return nil, err
	}
	tmpl, err := ca.leafTemplate(role, name, hosts)
	if err != nil {
		return nil, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("pki: sign agent certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	return &Issued{
		CertPEM: encodeCert(der), KeyPEM: keyPEM, CAPEM: ca.CertPEM(),
		Fingerprint: Fingerprint(leaf), NotAfter: leaf.NotAfter,
	}, nil
}

// agentKey returns the public key to certify: the CSR's, or a new key's
// (then also returned in PEM form).
func agentKey(csrPEM []byte) (crypto.PublicKey, []byte, error) {
	if len(csrPEM) == 0 {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("pki: generate key: %w", err)
		}
		keyPEM, err := encodeKey(key)
		return &key.PublicKey, keyPEM, err
	}
	der, err := decodeBlock(csrPEM, pemCSR)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: CSR: %w", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, fmt.Errorf("pki: CSR signature: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, nil, fmt.Errorf("pki: CSR key: ECDSA curve %s not accepted", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, nil, fmt.Errorf("pki: CSR key: RSA %d bits is too short", k.N.BitLen())
		}
	default:
		return nil, nil, fmt.Errorf("pki: CSR key type %T not accepted", csr.PublicKey)
	}
	return csr.PublicKey, nil, nil
}

// leafTemplate is a leaf certificate template for role:name valid from now.
func (ca *CA) leafTemplate(role, name string, hosts []string) (*x509.Certificate, error) {
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := ca.now()
	notAfter := now.Add(ca.leafTTL)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName: name, OrganizationalUnit: []string{role}, Organization: []string{organization},
		},
		NotBefore: now.Add(-clockSkewAllowance),
		NotAfter:  notAfter,
		KeyUsage:  x509.KeyUsageDigitalSignature,
		URIs:      []*url.URL{identityURI(role, name)},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	return tmpl, nil
}

// NewCSR generates an ECDSA P-256 key and a CSR for it, for an agent that
// keeps its key: it sends csrPEM with its join token and stores keyPEM (0600).
func NewCSR(name string) (csrPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader,
		&x509.CertificateRequest{Subject: pkix.Name{CommonName: name}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create CSR: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemCSR, Bytes: der}), keyPEM, nil
}
