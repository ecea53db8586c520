package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSigned is a server certificate for 127.0.0.1.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// cbcOnly is a TLS 1.2 client configuration offering nothing but CBC
// suites, for tests of listeners.
func cbcOnly(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA}}
}

// handshake runs a TLS handshake between a server with srv and a client
// with cli over a pipe and returns the client's error.
func handshake(srv, cli *tls.Config) (tls.ConnectionState, error) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tls.Server(a, srv).Handshake()
		a.Close()
	}()
	cli = cli.Clone()
	cli.ServerName = "127.0.0.1"
	c := tls.Client(b, cli)
	err := c.Handshake()
	b.Close()
	<-done
	return c.ConnectionState(), err
}

func TestBaseRefusesCBC(t *testing.T) {
	cert, pool := selfSigned(t)
	srv := Base()
	srv.Certificates = []tls.Certificate{cert}
	for _, tc := range []struct {
		name string
		cli  *tls.Config
		ok   bool
	}{
		{"TLS 1.2 CBC only", cbcOnly(pool), false},
		{"TLS 1.1", &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.2 AES-GCM", &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, true},
		{"TLS 1.2 ChaCha20", &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}, true},
		{"TLS 1.3", &tls.Config{RootCAs: pool}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := handshake(srv, tc.cli)
			if (err == nil) != tc.ok {
				t.Fatalf("handshake: %v, want success %v", err, tc.ok)
			}
			if err == nil && st.Version == tls.VersionTLS12 && !aead(st.CipherSuite) {
				t.Fatalf("negotiated %s", tls.CipherSuiteName(st.CipherSuite))
			}
		})
	}
}

func TestHarden(t *testing.T) {
	cert, pool := selfSigned(t)
	weak := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}
	h := Harden(weak)
	if weak.MinVersion != tls.VersionTLS10 || len(weak.CipherSuites) != 1 {
		t.Fatal("Harden changed its argument")
	}
	if _, err := handshake(h, cbcOnly(pool)); err == nil {
		t.Fatal("hardened configuration accepted a CBC-only client")
	}
	if h := Harden(nil); h.MinVersion != tls.VersionTLS12 || len(h.CipherSuites) != len(cipherSuites) {
		t.Fatalf("Harden(nil) = %+v", h)
	}
}

func aead(id uint16) bool {
	for _, s := range cipherSuites {
		if s == id {
			return true
		}
	}
	return false
}
