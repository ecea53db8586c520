package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

type handshakeResult struct {
	server    tls.ConnectionState
	serverErr error
	clientErr error
}

// handshake runs a real TLS handshake over loopback TCP.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan handshakeResult, 1)
	go func() {
		var r handshakeResult
		c, err := ln.Accept()
		if err != nil {
			r.serverErr = err
			done <- r
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		sc := tls.Server(c, serverCfg)
		r.serverErr = sc.Handshake()
		if r.serverErr == nil {
			// TLS 1.3 client certificates are checked after the client's
			// handshake returns: read so the client sees any alert.
			_, r.serverErr = sc.Write([]byte("ok"))
		}
		r.server = sc.ConnectionState()
		done <- r
	}()
	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	cc := tls.Client(conn, clientCfg)
	clientErr := cc.Handshake()
	if clientErr == nil {
		buf := make([]byte, 2)
		_, clientErr = io.ReadFull(cc, buf)
	}
	r := <-done
	r.clientErr = clientErr
	return r
}

func issueTLS(t *testing.T, ca *CA, role, name string) tls.Certificate {
	t.Helper()
	iss, err := ca.IssueAgent(role, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// selfSigned forges a certificate with exactly the identity of a real agent.
func selfSigned(t *testing.T, role, name string) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(42),
		Subject:      pkix.Name{CommonName: name, OrganizationalUnit: []string{role}, Organization: []string{organization}},
		NotBefore:    t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour * 24 * 365),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		URIs:        []*url.URL{identityURI(role, name)},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestHandshakeAgentToServer(t *testing.T) {
	ca := mustInit(t, t.TempDir(), WithClock(fixedClock(t0)))
	srv, err := ca.IssueServer([]string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	agent := issueTLS(t, ca, RoleProxy, "p1")
	trust, err := NewTrust(ca.CertPEM(), fixedClock(t0))
	if err != nil {
		t.Fatal(err)
	}
	r := handshake(t, ca.ServerTLSConfig(srv), trust.ClientTLSConfig(&agent, RoleServer, ""))
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("handshake: server %v, client %v", r.serverErr, r.clientErr)
	}
	role, name, err := PeerIdentity(&r.server)
	if err != nil || role != RoleProxy || name != "p1" {
		t.Fatalf("PeerIdentity: %q %q %v", role, name, err)
	}
	if _, err := RequireRole(&r.server, RoleProxy); err != nil {
		t.Fatal(err)
	}
	if _, err := RequireRole(&r.server, RoleRepository); !errors.Is(err, ErrWrongRole) {
		t.Fatalf("RequireRole(repository) for a proxy: %v", err)
	}

	// Without a client certificate the handshake succeeds (token API) but
	// there is no agent identity.
	r = handshake(t, ca.ServerTLSConfig(srv), trust.ClientTLSConfig(nil, RoleServer, ""))
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("anonymous handshake: server %v, client %v", r.serverErr, r.clientErr)
	}
	if _, _, err := PeerIdentity(&r.server); !errors.Is(err, ErrNoPeerCertificate) {
		t.Fatalf("anonymous PeerIdentity: %v", err)
	}
}

func TestHandshakeRefusesForgedAndExpiredClients(t *testing.T) {
	ca := mustInit(t, t.TempDir(), WithClock(fixedClock(t0)))
	otherCA := mustInit(t, t.TempDir(), WithClock(fixedClock(t0)))
	srv, _ := ca.IssueServer([]string{"127.0.0.1"})
	expired := issueTLS(t, ca, RoleProxy, "p1")
	later, err := Load(ca.dir, WithClock(fixedClock(t0.Add(DefaultLeafValidity+time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	laterSrv, _ := later.IssueServer([]string{"127.0.0.1"})
	cases := map[string]struct {
		cert   tls.Certificate
		server *CA // the server's CA and clock
		srv    tls.Certificate
		want   string
	}{
		"self-signed, same subject": {selfSigned(t, RoleProxy, "p1"), ca, srv, "signed by unknown authority"},
		"signed by another CA":      {issueTLS(t, otherCA, RoleProxy, "p1"), ca, srv, "signed by unknown authority"},
		"expired":                   {expired, later, laterSrv, "expired"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			// An attacker's client sends its certificate whatever CAs the
			// server asks for (Go's client would otherwise hold it back).
			client := tc.server.ClientTLSConfig(nil, RoleServer, "")
			client.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return &tc.cert, nil
			}
			r := handshake(t, tc.server.ServerTLSConfig(tc.srv), client)
			if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), tc.want) {
				t.Fatalf("server error %v, want %q (client error %v)", r.serverErr, tc.want, r.clientErr)
			}
			if r.clientErr == nil {
				t.Fatal("client saw no error")
			}
			t.Logf("server: %v", r.serverErr)

			// A well-behaved client holds a certificate the server's CA
			// did not sign back: the connection is anonymous, no identity.
			polite := tc.server.ClientTLSConfig(&tc.cert, RoleServer, "")
			if r := handshake(t, tc.server.ServerTLSConfig(tc.srv), polite); r.serverErr == nil {
				if _, _, err := PeerIdentity(&r.server); err == nil {
					t.Fatal("identity from a forged or expired certificate")
				}
			}
		})
	}
}

func TestHandshakeClientVerifiesPeer(t *testing.T) {
	ca := mustInit(t, t.TempDir(), WithClock(fixedClock(t0)))
	otherCA := mustInit(t, t.TempDir(), WithClock(fixedClock(t0)))
	srv, _ := ca.IssueServer([]string{"127.0.0.1"})
	foreignSrv, _ := otherCA.IssueServer([]string{"127.0.0.1"})
	proxy := issueTLS(t, ca, RoleProxy, "p1")
	repo := issueTLS(t, ca, RoleRepository, "r1")
	later, _ := Load(ca.dir, WithClock(fixedClock(t0.Add(DefaultLeafValidity+time.Hour))))

	for _, tc := range []struct {
		name       string
		serverCert tls.Certificate
		client     *tls.Config
		ok         bool
	}{
		{"proxy to repository r1", repo, ca.ClientTLSConfig(&proxy, RoleRepository, "r1"), true},
		{"proxy to any repository", repo, ca.ClientTLSConfig(&proxy, RoleRepository, ""), true},
		{"wrong repository name", repo, ca.ClientTLSConfig(&proxy, RoleRepository, "r2"), false},
		{"repository posing as server", repo, ca.ClientTLSConfig(&proxy, RoleServer, ""), false},
		{"server from another CA", foreignSrv, ca.ClientTLSConfig(&proxy, RoleServer, ""), false},
		{"forged self-signed server", selfSigned(t, RoleRepository, "r1"), ca.ClientTLSConfig(&proxy, RoleRepository, "r1"), false},
		{"expired server certificate", srv, later.ClientTLSConfig(nil, RoleServer, ""), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := handshake(t, ca.Trust().ServerTLSConfig(tc.serverCert), tc.client)
			if tc.ok != (r.clientErr == nil) {
				t.Fatalf("client error %v, want ok=%v", r.clientErr, tc.ok)
			}
		})
	}
}

func TestRequireAgentMiddleware(t *testing.T) {
	ca := mustInit(t, t.TempDir())
	srvCert, _ := ca.IssueServer([]string{"127.0.0.1"})
	h := RequireAgent(RoleProxy)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := AgentFrom(r.Context())
		_, _ = io.WriteString(w, a.Role+":"+a.Name)
	}))
	ts := httptest.NewUnstartedServer(h)
	ts.TLS = ca.ServerTLSConfig(srvCert)
	ts.StartTLS()
	defer ts.Close()
	get := func(cert *tls.Certificate) (int, string) {
		tr := &http.Transport{TLSClientConfig: ca.ClientTLSConfig(cert, RoleServer, "")}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(ts.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	proxy, repo := issueTLS(t, ca, RoleProxy, "p1"), issueTLS(t, ca, RoleRepository, "r1")
	if code, body := get(&proxy); code != 200 || body != "proxy:p1" {
		t.Fatalf("proxy: %d %q", code, body)
	}
	if code, _ := get(&repo); code != http.StatusForbidden {
		t.Fatalf("repository: %d", code)
	}
	if code, _ := get(nil); code != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", code)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Fatalf("%s: mode %#o, want %#o", path, st.Mode().Perm(), want)
	}
}
