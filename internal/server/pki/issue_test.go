package pki

import (
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIssueAgentGeneratedKey(t *testing.T) {
	ca := mustInit(t, t.TempDir(), WithClock(fixedClock(t0)))
	iss, err := ca.IssueAgent(RoleRepository, "repo-1.site_a", nil, "10.0.0.5", "repo1.example")
	if err != nil {
		t.Fatal(err)
	}
	if len(iss.KeyPEM) == 0 || string(iss.CAPEM) != string(ca.CertPEM()) {
		t.Fatal("missing key or CA PEM")
	}
	leaf, err := ParseCertificatePEM(iss.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	_, err = leaf.Verify(x509.VerifyOptions{
		Roots: ca.Pool(), CurrentTime: t0,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	role, name, err := certIdentity(leaf)
	if err != nil || role != RoleRepository || name != "repo-1.site_a" {
		t.Fatalf("identity %q %q %v", role, name, err)
	}
	if leaf.URIs[0].String() != "holdfast:repository:repo-1.site_a" {
		t.Fatalf("URI SAN %s", leaf.URIs[0])
	}
	if !slices.Equal(leaf.DNSNames, []string{"repo1.example"}) || len(leaf.IPAddresses) != 1 {
		t.Fatalf("SANs %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if iss.Fingerprint != Fingerprint(leaf) || !iss.NotAfter.Equal(t0.Add(DefaultLeafValidity)) {
		t.Fatalf("fingerprint/NotAfter %s %v", iss.Fingerprint, iss.NotAfter)
	}
	if _, err := iss.TLSCertificate(); err != nil {
		t.Fatalf("key pair: %v", err)
	}
	dir := t.TempDir()
	if err := WriteKeyPair(filepath.Join(dir, "agent.pem"), filepath.Join(dir, "agent-key.pem"), iss.CertPEM, iss.KeyPEM); err != nil {
		t.Fatal(err)
	}
	assertMode(t, filepath.Join(dir, "agent-key.pem"), 0o600)
}

func TestIssueAgentCSR(t *testing.T) {
	ca := mustInit(t, t.TempDir())
	csrPEM, keyPEM, err := NewCSR("i-claim-to-be-admin")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := ca.IssueAgent(RoleProxy, "proxy7", csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(iss.KeyPEM) != 0 {
		t.Fatal("CA returned a key for a CSR request")
	}
	leaf, _ := ParseCertificatePEM(iss.CertPEM)
	if leaf.Subject.CommonName != "proxy7" {
		t.Fatalf("CSR subject leaked into certificate: %s", leaf.Subject)
	}
	iss.KeyPEM = keyPEM
	if _, err := iss.TLSCertificate(); err != nil {
		t.Fatalf("certificate does not match the CSR key: %v", err)
	}

	// A CSR whose signature does not match its content is refused.
	b, _ := pem.Decode(csrPEM)
	b.Bytes[len(b.Bytes)-3] ^= 0xff
	if _, err := ca.IssueAgent(RoleProxy, "proxy7", pem.EncodeToMemory(b)); err == nil {
		t.Fatal("tampered CSR accepted")
	}
}

func TestIssueAgentRejectsBadInput(t *testing.T) {
	ca := mustInit(t, t.TempDir())
	for _, tc := range []struct{ role, name, want string }{
		{"server", "x", "agent role"},
		{"admin", "x", "agent role"},
		{RoleProxy, "", "agent name"},
		{RoleProxy, "a:b", "agent name"},
		{RoleProxy, "-lead", "agent name"},
		{RoleProxy, strings.Repeat("a", 65), "agent name"},
	} {
		if _, err := ca.IssueAgent(tc.role, tc.name, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("IssueAgent(%q, %q): %v", tc.role, tc.name, err)
		}
	}
	if _, err := ca.IssueAgent(RoleProxy, "p", []byte("junk")); err == nil {
		t.Error("junk CSR accepted")
	}
}

func TestIssueServer(t *testing.T) {
	ca := mustInit(t, t.TempDir(), WithClock(fixedClock(t0)))
	if _, err := ca.IssueServer(nil); err == nil {
		t.Fatal("no hosts accepted")
	}
	cert, err := ca.IssueServer([]string{"backup.example", "127.0.0.1", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cert.Leaf.Verify(x509.VerifyOptions{
		Roots: ca.Pool(), CurrentTime: t0.Add(time.Hour), DNSName: "backup.example",
	})
	if err != nil {
		t.Fatal(err)
	}
	role, name, err := certIdentity(cert.Leaf)
	if err != nil || role != RoleServer || name != "backup.example" {
		t.Fatalf("identity %q %q %v", role, name, err)
	}
	if len(cert.Leaf.IPAddresses) != 2 {
		t.Fatalf("IP SANs %v", cert.Leaf.IPAddresses)
	}
}
