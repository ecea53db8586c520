package api

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/configdb"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// sampleJoinBody stands for a join body with a fresh CSR in samples.
const sampleJoinBody = "<join body>"

// joinBody is a join request for name with a new CSR.
func joinBody(t *testing.T, token, role, name, address string) string {
	body, _ := joinBodyKey(t, token, role, name, address)
	return body
}

func joinBodyKey(t *testing.T, token, role, name, address string) (string, []byte) {
	t.Helper()
	csr, key, err := pki.NewCSR(name)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(apitypes.JoinRequest{Token: token, Role: role, Name: name, CSR: string(csr), Address: address, Slots: 4})
	return string(b), key
}

func joinToken(t *testing.T, e *env, role string) string {
	t.Helper()
	tok, err := e.store.CreateJoinToken(context.Background(), role, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// join enrols name as a repository and returns its certificate and key.
func join(t *testing.T, e *env, name string) tls.Certificate {
	t.Helper()
	body, key := joinBodyKey(t, joinToken(t, e, "repository"), "repository", name, "127.0.0.1:7001")
	resp := decodeBody[apitypes.JoinResponse](t, e.mustDo("", "POST", "/api/v1/agents/join", body, 201))
	cert, err := tls.X509KeyPair([]byte(resp.Certificate), key)
	if err != nil {
		t.Fatalf("issued certificate does not match the CSR key: %v", err)
	}
	return cert
}

func TestAgentJoin(t *testing.T) {
	e := newEnv(t)
	tok := joinToken(t, e, "repository")
	body := joinBody(t, tok, "repository", "repo1", "127.0.0.1:7001")
	resp := decodeBody[apitypes.JoinResponse](t, e.mustDo("", "POST", "/api/v1/agents/join", body, 201))
	if resp.CA != string(e.ca.CertPEM()) {
		t.Fatal("join answer does not carry the CA certificate")
	}
	leaf, err := pki.ParseCertificatePEM([]byte(resp.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: e.ca.Pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}})
	if err != nil {
		t.Fatalf("issued certificate does not verify against the CA: %v", err)
	}
	role, name, err := pki.PeerIdentity(&tls.ConnectionState{VerifiedChains: chains})
	if err != nil || role != "repository" || name != "repo1" {
		t.Fatalf("identity %q %q %v", role, name, err)
	}
	a, err := e.store.GetAgent(context.Background(), "repository", "repo1")
	if err != nil || a.CertFingerprint != pki.Fingerprint(leaf) || a.Address != "127.0.0.1:7001" || a.Slots != 4 {
		t.Fatalf("agent row %+v, %v", a, err)
	}
	audit := e.mustDo(e.tokens[configdb.RoleAdministrator], "GET", "/api/v1/audit?action=agent.join", "", 200)
	if !strings.Contains(audit.Body.String(), "repository/repo1") {
		t.Fatalf("join not audited: %s", audit.Body)
	}
	// The token is spent, even for another name.
	checkError(t, e.do("", "POST", "/api/v1/agents/join", joinBody(t, tok, "repository", "repo2", "")),
		http.StatusUnauthorized, "unauthorized")
	// A proxy token does not enrol a repository.
	ptok := joinToken(t, e, "proxy")
	checkError(t, e.do("", "POST", "/api/v1/agents/join", joinBody(t, ptok, "repository", "repo3", "")),
		http.StatusForbidden, "forbidden")
	if strings.Contains(e.bodies.String(), tok) || strings.Contains(e.logs.String(), tok) {
		t.Fatal("join token echoed in a response or log")
	}
}

func TestAgentJoinRejects(t *testing.T) {
	e := newEnv(t)
	tok := joinToken(t, e, "proxy")
	for _, body := range []string{
		`{"token":"` + tok + `","role":"proxy","name":"p1","csr":"junk"}`,
		`{"token":"` + tok + `","role":"proxy","name":"bad:name","csr":"x"}`,
		`{"token":"` + tok + `","role":"server","name":"p1","csr":"x"}`,
		joinBody(t, tok, "proxy", "p1", "no-port"),
	} {
		checkError(t, e.do("", "POST", "/api/v1/agents/join", body), http.StatusBadRequest, "invalid_request")
	}
	// Malformed requests did not burn the token.
	e.mustDo("", "POST", "/api/v1/agents/join", joinBody(t, tok, "proxy", "p1", ""), 201)

	noCA := New(e.store, Config{})
	rec := httptest.NewRecorder()
	noCA.ServeHTTP(rec, httptest.NewRequest("POST", "/api/v1/agents/join", strings.NewReader(joinBody(t, tok, "proxy", "p1", ""))))
	checkError(t, rec, http.StatusServiceUnavailable, "unavailable")
}

// tlsServer serves e's API over TLS with the CA's server configuration.
func tlsServer(t *testing.T, e *env) *httptest.Server {
	t.Helper()
	cert, err := e.ca.IssueServer([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(e.srv)
	ts.TLS = e.ca.ServerTLSConfig(cert)
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

// heartbeat calls the heartbeat endpoint presenting cert (nil: none); the
// certificate is sent even when the server asks for another CA's.
func heartbeat(t *testing.T, e *env, url string, cert *tls.Certificate) (int, error) {
	t.Helper()
	cfg := e.ca.ClientTLSConfig(nil, pki.RoleServer, "")
	if cert != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Post(url+"/api/v1/agents/heartbeat", "application/json", strings.NewReader(`{"address":"127.0.0.1:7002"}`))
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func TestAgentHeartbeat(t *testing.T) {
	e := newEnv(t)
	ts := tlsServer(t, e)
	if code, err := heartbeat(t, e, ts.URL, nil); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("heartbeat without a client certificate: %d %v, want 401", code, err)
	}
	cert := join(t, e, "repo1")
	if code, err := heartbeat(t, e, ts.URL, &cert); err != nil || code != http.StatusOK {
		t.Fatalf("heartbeat with the issued certificate: %d %v, want 200", code, err)
	}
	a, err := e.store.GetAgent(context.Background(), "repository", "repo1")
	if err != nil || a.LastHeartbeat.IsZero() || a.Address != "127.0.0.1:7002" {
		t.Fatalf("agent after heartbeat: %+v %v", a, err)
	}
	// A certificate of this CA the server no longer knows (superseded by a re-join).
	old := cert
	join(t, e, "repo1")
	if code, err := heartbeat(t, e, ts.URL, &old); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("heartbeat with a superseded certificate: %d %v, want 401", code, err)
	}
	// A certificate from another CA with the same identity fails the handshake.
	other, err := pki.Init(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	iss, _ := other.IssueAgent("repository", "repo1", nil)
	forged, _ := iss.TLSCertificate()
	if code, err := heartbeat(t, e, ts.URL, &forged); err == nil {
		t.Fatalf("forged certificate accepted: status %d", code)
	}
}
