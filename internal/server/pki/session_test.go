package pki

import (
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSessionCA(t *testing.T) {
	ca, err := NewSessionCA("test session", time.Hour, WithClock(fixedClock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewSessionCA("test session", time.Hour, WithClock(fixedClock(t0)))
	if err != nil {
		t.Fatal(err)
	}
	if ca.dir != "" || !ca.Certificate().IsCA || !ca.Certificate().NotAfter.Equal(t0.Add(time.Hour)) {
		t.Fatalf("session CA: dir %q, %+v", ca.dir, ca.Certificate())
	}
	iss, err := ca.IssueClient("requester")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := iss.TLSCertificate(); err != nil {
		t.Fatalf("issued pair: %v", err)
	}
	cert, err := ParseCertificatePEM(iss.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || !cert.NotAfter.Equal(t0.Add(time.Hour)) {
		t.Errorf("client certificate: EKU %v, NotAfter %v", cert.ExtKeyUsage, cert.NotAfter)
	}
	for _, c := range []struct {
		name  string
		roots *CA
		usage x509.ExtKeyUsage
		ok    bool
	}{
		{"its CA, as a client", ca, x509.ExtKeyUsageClientAuth, true},
		{"its CA, as a server", ca, x509.ExtKeyUsageServerAuth, false},
		{"another session's CA", other, x509.ExtKeyUsageClientAuth, false},
	} {
		_, err := cert.Verify(x509.VerifyOptions{Roots: c.roots.Pool(), CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{c.usage}})
		if (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestWriteNew(t *testing.T) {
	p := filepath.Join(t.TempDir(), "client-key.pem")
	if err := WriteNew(p, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(p, []byte("second"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second write: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "first" {
		t.Errorf("overwritten: %q", b)
	}
}
