package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/server/agent"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// lockedBuffer collects a background process's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// agentProc is a holdfast agent running in the background.
type agentProc struct {
	cmd         *exec.Cmd
	out, errOut *lockedBuffer
}

func startAgent(t *testing.T, e *env, args ...string) *agentProc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	p := &agentProc{cmd: e.command(ctx, args...), out: &lockedBuffer{}, errOut: &lockedBuffer{}}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errOut
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return p
}

// stop interrupts the agent and checks it exits 0 or 130.
func (p *agentProc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err := p.cmd.Wait()
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != exitInterrupted) {
		t.Fatalf("agent exit: %v\nstdout: %s\nstderr: %s", err, p.out, p.errOut)
	}
}

// waitHeartbeat waits until `repository list --json` shows name with a
// heartbeat after since, and returns its row.
func waitHeartbeat(t *testing.T, e *env, p *agentProc, name string, since time.Time) apitypes.Agent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var agents []apitypes.Agent
		if err := json.Unmarshal([]byte(e.ok("repository", "list", "--json")), &agents); err != nil {
			t.Fatal(err)
		}
		for _, a := range agents {
			if a.Name == name && a.LastHeartbeat != nil && !a.LastHeartbeat.Before(since.Truncate(time.Second)) {
				return a
			}
		}
		if p.cmd.ProcessState != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no heartbeat of %s\nstdout: %s\nstderr: %s", name, p.out, p.errOut)
	return apitypes.Agent{}
}

func TestRepositoryAgentJoinsAndHeartbeats(t *testing.T) {
	s := startTestServer(t)
	e := clientEnv(t, s, s.admin)
	e.init()
	tok := strings.TrimSpace(e.ok("repository", "token"))
	start := time.Now()
	p := startAgent(t, e, "repository", "--name", "repo1", "--path", e.repo, "--join-token", tok, "--listen", "127.0.0.1:0")
	a := waitHeartbeat(t, e, p, "repo1", start)
	if !strings.HasPrefix(a.Address, "127.0.0.1:") || !strings.Contains(p.out.String(), "serving on "+a.Address) {
		t.Fatalf("address %q, stdout %q", a.Address, p.out)
	}
	checkMoverAccess(t, s, e, a.Address)
	p.stop(t)
	st, err := os.Stat(filepath.Join(e.dir, "state", "repository-repo1"))
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("state dir: %v %v", st, err)
	}
	if strings.Contains(p.out.String()+p.errOut.String(), tok) {
		t.Fatal("agent printed its join token")
	}

	// A restart reuses the credentials: no token needed (and the old one is spent).
	again := time.Now().Add(time.Second)
	time.Sleep(time.Until(again))
	p = startAgent(t, e, "repository", "--name", "repo1", "--path", e.repo)
	waitHeartbeat(t, e, p, "repo1", again)
	p.stop(t)
	if r := e.run("repository", "--name", "repo2", "--path", e.repo, "--state-dir", filepath.Join(e.dir, "s2"),
		"--join-token", tok); r.code == 0 || !strings.Contains(r.stderr, "refused") {
		t.Fatalf("reused join token: exit %d: %s", r.code, r.stderr)
	}
}

// checkMoverAccess dials the repository agent at addr: a proxy that joined
// the server opens the repository over the data mover protocol; a
// certificate of the server's CA that was never handed out at a join, and a
// forged one, are refused.
func checkMoverAccess(t *testing.T, s testServer, e *env, addr string) {
	t.Helper()
	ca, err := pki.Load(filepath.Dir(s.ca))
	if err != nil {
		t.Fatal(err)
	}
	joined := joinProxy(t, s, e, "proxy1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mc, err := mover.Dial(ctx, mover.ClientOptions{URL: "https://" + addr, Repo: "repo1",
		Password: []byte("correct horse"), HTTP: moverHTTP(t, ca, joined)})
	if err != nil {
		t.Fatalf("proxy cannot reach the repository agent: %v", err)
	}
	mc.Close()
	iss, err := ca.IssueAgent(pki.RoleProxy, "proxy2", nil)
	if err != nil {
		t.Fatal(err)
	}
	unissued := &agent.Credentials{CertPEM: iss.CertPEM, KeyPEM: iss.KeyPEM, CAPEM: iss.CAPEM}
	if st, _ := moverGet(t, ca, unissued, addr, "config"); st != http.StatusForbidden {
		t.Fatalf("certificate the server never handed out: HTTP %d, want 403", st)
	}
	forged := forgedCert(t)
	tc := ca.ClientTLSConfig(nil, pki.RoleRepository, "repo1")
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &forged, nil }
	fc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
	if resp, err := fc.Get("https://" + addr + mover.APIPrefix + "repo1/config"); err == nil {
		resp.Body.Close()
		t.Fatalf("forged certificate reached the repository agent: HTTP %d", resp.StatusCode)
	}
}

func TestRepositoryAgentNeedsRepository(t *testing.T) {
	s := startTestServer(t)
	e := clientEnv(t, s, s.admin)
	r := e.run("repository", "--name", "repo1", "--path", filepath.Join(e.dir, "nothing"), "--join-token", "hfj_x")
	if r.code != exitNoRepository || !strings.Contains(r.stderr, "holdfast repo init --repo") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}

// forgedCert is a self-signed certificate claiming to be repository repo1.
func forgedCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7),
		Subject:   pkix.Name{CommonName: "repo1", OrganizationalUnit: []string{"repository"}, Organization: []string{"Holdfast"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		URIs:        []*url.URL{{Scheme: "holdfast", Opaque: "repository:repo1"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestForgedAgentCertificateRefused(t *testing.T) {
	s := startTestServer(t)
	pem, err := os.ReadFile(s.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	forged := forgedCert(t)
	for _, cert := range []*tls.Certificate{nil, &forged} {
		tc := &tls.Config{RootCAs: pool}
		if cert != nil {
			tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		resp, err := hc.Post(s.url+"/api/v1/agents/heartbeat", "application/json", strings.NewReader("{}"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("heartbeat (forged=%v): HTTP %d, want 401 or a failed handshake", cert != nil, resp.StatusCode)
			}
		} else if cert == nil {
			t.Fatalf("heartbeat without a certificate: %v", err)
		}
	}
}
