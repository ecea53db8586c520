package nbd

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a self-signed CA and a server certificate for 127.0.0.1 and
// localhost.
type testPKI struct {
	caPEM, certPEM, keyPEM []byte
	pool                   *x509.CertPool
	cert                   tls.Certificate // server
	client                 tls.Certificate // client certificate for qemu's verify-peer
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "holdfast test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	p := &testPKI{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.certPEM, p.keyPEM = issueCert(t, ca, caKey, 2, x509.ExtKeyUsageServerAuth)
	if p.cert, err = tls.X509KeyPair(p.certPEM, p.keyPEM); err != nil {
		t.Fatal(err)
	}
	clientCert, clientKey := issueCert(t, ca, caKey, 3, x509.ExtKeyUsageClientAuth)
	if p.client, err = tls.X509KeyPair(clientCert, clientKey); err != nil {
		t.Fatal(err)
	}
	return p
}

// issueCert signs a certificate for 127.0.0.1 and localhost.
func issueCert(t testing.TB, ca *x509.Certificate, caKey *ecdsa.PrivateKey, serial int64, usage x509.ExtKeyUsage) ([]byte, []byte) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		DNSNames:              []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
}

// writeQemuDir writes the files qemu's tls-creds-x509 expects.
func (p *testPKI) writeQemuDir(t testing.TB) string {
	dir := t.TempDir()
	files := map[string][]byte{"ca-cert.pem": p.caPEM, "server-cert.pem": p.certPEM, "server-key.pem": p.keyPEM}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestQemuNBDTLS(t *testing.T) {
	needBins(t, "qemu-nbd")
	pki := newTestPKI(t)
	path, want := makeImage(t, t.TempDir(), 4<<20, []region{{4096, 1 << 20}})
	url := startQemuNBD(t, false, "--object", "tls-creds-x509,id=tls0,dir="+pki.writeQemuDir(t)+",endpoint=server",
		"--tls-creds", "tls0", "-f", "raw", "-r", path)
	tlsURL := strings.Replace(url, "nbd://", "nbds://", 1)
	// qemu verifies client certificates by default (verify-peer=on).
	cfg := &tls.Config{RootCAs: pki.pool, Certificates: []tls.Certificate{pki.client}}
	c := dialT(t, tlsURL, ClientOptions{TLSConfig: cfg, MetaContexts: []string{ContextBaseAllocation}})
	if got := readAllChunks(t, c, c.Size(), 1<<20); !bytes.Equal(got, want) {
		t.Fatal("content differs over TLS")
	}
	if _, err := c.AllocatedExtents(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := Dial(testCtx(t), url, ClientOptions{}); !errors.Is(err, ErrTLSRequired) {
		t.Fatalf("plain connection to TLS-only server: %v", err)
	}
	if _, err := Dial(testCtx(t), tlsURL, ClientOptions{TLSConfig: &tls.Config{Certificates: cfg.Certificates}}); err == nil {
		t.Fatal("untrusted server certificate accepted")
	}
}

func TestServerTLS(t *testing.T) {
	pki := newTestPKI(t)
	disk := &memDisk{b: bytes.Repeat([]byte{7}, 1<<20)}
	for _, require := range []bool{false, true} {
		opts := ServerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.cert}}, RequireTLS: require}
		_, network, addr := serveT(t, false, opts, Export{Name: "d", Size: 1 << 20, ReaderAt: disk, WriterAt: disk})
		base := "nbds://" + addr + "/d"
		c := dialT(t, base, ClientOptions{TLSConfig: &tls.Config{RootCAs: pki.pool}})
		if _, err := c.WriteAt([]byte("tls"), 10); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, 16)
		if _, err := c.ReadAt(p, 8); err != nil || string(p[2:5]) != "tls" {
			t.Fatalf("read back %q: %v", p, err)
		}
		_, err := Dial(testCtx(t), nbdURL(network, addr, "d"), ClientOptions{})
		if require != errors.Is(err, ErrTLSRequired) || (!require && err != nil) {
			t.Fatalf("require=%v plain dial: %v", require, err)
		}
	}
	t.Run("unix", func(t *testing.T) {
		opts := ServerOptions{TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.cert}}, RequireTLS: true}
		_, _, sock := serveT(t, true, opts, Export{Name: "d", Size: 1 << 20, ReaderAt: disk})
		url := "nbds+unix:///d?socket=" + sock
		if _, err := Dial(testCtx(t), url, ClientOptions{TLSConfig: &tls.Config{RootCAs: pki.pool}}); err == nil {
			t.Fatal("TLS over unix without ServerName accepted")
		}
		c := dialT(t, url, ClientOptions{TLSConfig: &tls.Config{RootCAs: pki.pool, ServerName: "localhost"}})
		if c.Size() != 1<<20 {
			t.Fatalf("size %d", c.Size())
		}
	})
}

// TestServerRefusesCBC: after NBD_OPT_STARTTLS the server refuses a TLS 1.2
// client offering only CBC suites (whatever configuration it was given),
// and accepts one offering AES-GCM.
func TestServerRefusesCBC(t *testing.T) {
	p := newTestPKI(t)
	weak := &tls.Config{Certificates: []tls.Certificate{p.cert}, CipherSuites: []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
	disk := &memDisk{b: make([]byte, 1<<20)}
	_, network, addr := serveT(t, false, ServerOptions{TLSConfig: weak, RequireTLS: true},
		Export{Name: "d", Size: 1 << 20, ReaderAt: disk})
	for _, tc := range []struct {
		name   string
		suites []uint16
		ok     bool
	}{
		{"CBC only", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA}, false},
		{"AES-GCM", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			h, err := startClientHandshake(conn)
			if err != nil {
				t.Fatal(err)
			}
			cfg := &tls.Config{RootCAs: p.pool, ServerName: "127.0.0.1", MaxVersion: tls.VersionTLS12, CipherSuites: tc.suites}
			err = h.startTLS(testCtx(t), cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("STARTTLS handshake: %v, want success %v", err, tc.ok)
			}
		})
	}
}
