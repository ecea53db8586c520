package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// File names inside the CA directory.
const (
	CACertFile = "ca.pem"
	CAKeyFile  = "ca-key.pem"
)

// Validity periods.
const (
	CAValidity           = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity  = 365 * 24 * time.Hour
	clockSkewAllowance   = 5 * time.Minute
	caCommonName         = "Holdfast backup server CA"
	organization         = "Holdfast"
	maxLeafValidityYears = 10
)

// ErrInvalidCA is wrapped by every error about an unreadable, corrupt or
// inconsistent CA directory.
var ErrInvalidCA = errors.New("invalid CA")

// CA is a loaded certificate authority. It is safe for concurrent use.
type CA struct {
	dir     string
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	pool    *x509.CertPool
	now     func() time.Time
	leafTTL time.Duration
}

// Option configures Init and Load.
type Option func(*CA)

// WithClock sets the clock used to issue certificates and to verify peers.
func WithClock(c clock.Clock) Option { return func(ca *CA) { ca.now = clock.Or(c).Now } }

// WithLeafValidity sets how long issued server and agent certificates are
// valid (default one year, at most ten).
func WithLeafValidity(d time.Duration) Option { return func(ca *CA) { ca.leafTTL = d } }

func newCA(dir string, opts []Option) (*CA, error) {
	ca := &CA{dir: dir, now: clock.Real().Now, leafTTL: DefaultLeafValidity}
	for _, o := range opts {
		o(ca)
	}
	if ca.leafTTL <= 0 || ca.leafTTL > maxLeafValidityYears*365*24*time.Hour {
		return nil, fmt.Errorf("pki: leaf validity %v out of range (0, %d years]", ca.leafTTL, maxLeafValidityYears)
	}
	return ca, nil
}

// Init loads the CA in dir, creating dir (mode 0700) and a new CA first if
// dir holds none. A directory with a key but no certificate is an error: it is
// what a crash during creation leaves, and guessing would lose the CA.
func Init(dir string, opts ...Option) (*CA, error) {
	ca, err := newCA(dir, opts)
	if err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	if _, err := os.Stat(certPath); err == nil {
		return Load(dir, opts...)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if _, err := os.Stat(keyPath); err == nil {
		return nil, fmt.Errorf("pki: %s exists but %s does not (incomplete CA): restore %s or remove the directory: %w",
			keyPath, CACertFile, CACertFile, ErrInvalidCA)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	if err := ca.create(certPath, keyPath); err != nil {
		return nil, err
	}
	return ca, nil
}

// create generates the CA key and self-signed certificate and writes them:
// the key first, exclusively, then the certificate atomically.
func (ca *CA) create(certPath, keyPath string) error {
	der, key, err := ca.generate(caCommonName, CAValidity)
	if err != nil {
		return err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := writeExclusive(keyPath, keyPEM, 0o600); err != nil {
		return fmt.Errorf("pki: write CA key: %w", err)
	}
	certPEM := encodeCert(der)
	if err := writeAtomic(certPath, certPEM, 0o644); err != nil {
		return fmt.Errorf("pki: write CA certificate: %w", err)
	}
	return ca.set(der, certPEM, key)
}

// generate makes a CA key and its self-signed certificate, named cn and a
// random suffix, valid for validity from now.
func (ca *CA) generate(cn string, validity time.Duration) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	now := ca.now()
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	// A per-installation suffix keeps CAs of different servers apart in the
	// acceptable-CA list a TLS server sends.
	cn = fmt.Sprintf("%s %08x", cn, serial.Uint64()&0xffffffff)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{organization}},
		NotBefore:             now.Add(-clockSkewAllowance),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: create CA certificate: %w", err)
	}
	return der, key, nil
}

// Load loads the CA in dir. It fails with a message naming the file when a
// file is missing, corrupt, group- or world-readable (the key), or when the
// key does not belong to the certificate.
func Load(dir string, opts ...Option) (*CA, error) {
	ca, err := newCA(dir, opts)
	if err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA certificate: %w", err)
	}
	der, err := decodeCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w (%w)", certPath, err, ErrInvalidCA)
	}
	key, err := loadKey(keyPath)
	if err != nil {
		return nil, err
	}
	if err := ca.set(der, certPEM, key); err != nil {
		return nil, fmt.Errorf("pki: %s: %w", dir, err)
	}
	return ca, nil
}

func loadKey(path string) (*ecdsa.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("pki: CA key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("pki: %s has mode %#o; it must be readable by its owner only (chmod 600): %w",
			path, st.Mode().Perm(), ErrInvalidCA)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pki: read CA key: %w", err)
	}
	key, err := decodeKey(data)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w (%w)", path, err, ErrInvalidCA)
	}
	ecKey, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("pki: %s: CA key is %T, want ECDSA: %w", path, key, ErrInvalidCA)
	}
	return ecKey, nil
}

// set checks that der is a CA certificate matching key and installs both.
func (ca *CA) set(der, certPEM []byte, key *ecdsa.PrivateKey) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse CA certificate: %w (%w)", err, ErrInvalidCA)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return fmt.Errorf("%s is not a CA certificate: %w", CACertFile, ErrInvalidCA)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return fmt.Errorf("%s does not belong to %s: %w", CAKeyFile, CACertFile, ErrInvalidCA)
	}
	ca.cert, ca.certPEM, ca.key = cert, certPEM, key
	ca.pool = x509.NewCertPool()
	ca.pool.AddCert(cert)
	return nil
}

// Certificate returns the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate in PEM form, as agents store it.
func (ca *CA) CertPEM() []byte { return append([]byte(nil), ca.certPEM...) }

// Pool returns a pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool { return ca.pool.Clone() }

// Fingerprint returns the CA certificate's fingerprint; a join token can carry
// it so an agent can pin the CA before it trusts anything.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.cert) }

// Now returns the CA clock's current time.
func (ca *CA) Now() time.Time { return ca.now() }
