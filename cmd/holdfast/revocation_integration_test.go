package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/server/agent"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// joinProxy joins the server as proxy name with a fresh join token, as
// `holdfast proxy` does, and returns its credentials.
func joinProxy(t *testing.T, s testServer, e *env, name string) *agent.Credentials {
	t.Helper()
	caPEM, err := os.ReadFile(s.ca)
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(e.ok("proxy", "token"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := agent.Join(ctx, s.url, caPEM, pki.RoleProxy, name, tok, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// moverHTTP is an HTTP client presenting c to a repository agent.
func moverHTTP(t *testing.T, ca *pki.CA, c *agent.Credentials) *http.Client {
	t.Helper()
	cert, err := c.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	hc := mover.NewHTTPClient(ca.ClientTLSConfig(&cert, pki.RoleRepository, ""))
	t.Cleanup(hc.CloseIdleConnections)
	return hc
}

// moverCall sends one data mover request to repository repo1 at addr
// presenting c and returns the status and the body.
func moverCall(t *testing.T, ca *pki.CA, c *agent.Credentials, addr, method, path string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+addr+mover.APIPrefix+"repo1/"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := moverHTTP(t, ca, c).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func moverGet(t *testing.T, ca *pki.CA, c *agent.Credentials, addr, path string) (int, string) {
	t.Helper()
	return moverCall(t, ca, c, addr, http.MethodGet, path, nil)
}

// startMoverSession asks for a new session and returns the status and body.
func startMoverSession(t *testing.T, ca *pki.CA, c *agent.Credentials, addr string) (int, string) {
	t.Helper()
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	body, _ := json.Marshal(map[string]string{"request_id": hex.EncodeToString(id), "kind": "shared"})
	return moverCall(t, ca, c, addr, http.MethodPost, "sessions", body)
}

// repoLocks counts the lock files in the repository at dir.
func repoLocks(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "locks"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(ents)
}

// TestRepositoryAgentRevocation runs a server and a real repository agent:
// a proxy's sessions are bounded; after the proxy re-joins, its old
// certificate is refused by the agent (not only by the server) and the
// sessions it held end, releasing their repository locks; a repository's
// certificate and one the CA signed but the server never handed out are
// refused; a proxy may read keys but not list points (manifests in clear);
// an abandoned session's lock is released after --session-timeout.
func TestRepositoryAgentRevocation(t *testing.T) {
	s := startTestServer(t)
	e := clientEnv(t, s, s.admin)
	e.init()
	ca, err := pki.Load(filepath.Dir(s.ca))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(e.ok("repository", "token"))
	start := time.Now()
	p := startAgent(t, e, "repository", "--name", "repo1", "--path", e.repo, "--join-token", tok,
		"--listen", "127.0.0.1:0", "--proxy-sessions", "3")
	addr := waitHeartbeat(t, e, p, "repo1", start).Address

	old := joinProxy(t, s, e, "p1")
	for i := range 3 {
		if st, b := startMoverSession(t, ca, old, addr); st != http.StatusCreated {
			t.Fatalf("session %d of the proxy: HTTP %d %s", i+1, st, b)
		}
	}
	st, b := startMoverSession(t, ca, old, addr)
	if st != http.StatusTooManyRequests || !strings.Contains(b, "too_many_sessions") || !strings.Contains(b, "holds 3 sessions") {
		t.Fatalf("session beyond --proxy-sessions: HTTP %d %s, want 429 too_many_sessions", st, b)
	}
	if n := repoLocks(t, e.repo); n != 3 {
		t.Fatalf("%d repository locks, want 3", n)
	}

	current := joinProxy(t, s, e, "p1") // re-join: the old certificate is superseded
	// The agent learns it with its next heartbeat (every 10 s).
	deadline := time.Now().Add(time.Minute)
	for {
		st, _ := moverGet(t, ca, old, addr, "config")
		if st == http.StatusForbidden {
			break
		}
		if st != http.StatusOK || time.Now().After(deadline) {
			t.Fatalf("superseded certificate still served: HTTP %d\nstderr: %s", st, p.errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, path := range []string{"config", "keys", "points"} {
		if st, b := moverGet(t, ca, old, addr, path); st != http.StatusForbidden || !strings.Contains(b, "not valid on the server") {
			t.Fatalf("GET %s with the superseded certificate: HTTP %d %s, want 403", path, st, b)
		}
	}
	waitNoLocks(t, e.repo, p, "the superseded certificate's sessions")
	if st, b := moverGet(t, ca, current, addr, "keys"); st != http.StatusOK {
		t.Fatalf("GET keys with the new certificate: HTTP %d %s", st, b)
	}
	if st, b := moverGet(t, ca, current, addr, "points"); st != http.StatusForbidden {
		t.Fatalf("GET points (manifests in clear) as a proxy: HTTP %d %s, want 403", st, b)
	}
	repoCreds, err := agent.LoadState(filepath.Join(e.dir, "state", "repository-repo1"), pki.RoleRepository, "repo1")
	if err != nil {
		t.Fatal(err)
	}
	if st, b := moverGet(t, ca, repoCreds, addr, "keys"); st != http.StatusForbidden {
		t.Fatalf("GET keys with a repository certificate: HTTP %d %s, want 403", st, b)
	}

	// An abandoned session ends after --session-timeout and frees its lock
	// (the agent restarted with a short one; it reuses its credentials).
	p.stop(t)
	p = startAgent(t, e, "repository", "--name", "repo1", "--path", e.repo, "--listen", "127.0.0.1:0",
		"--session-timeout", "1s")
	defer p.stop(t)
	addr = servingAddr(t, p)
	if st, b := startMoverSession(t, ca, current, addr); st != http.StatusCreated {
		t.Fatalf("session of the re-joined proxy: HTTP %d %s", st, b)
	}
	waitNoLocks(t, e.repo, p, "the abandoned session")
}

// waitNoLocks waits until the repository at dir holds no lock.
func waitNoLocks(t *testing.T, dir string, p *agentProc, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for repoLocks(t, dir) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still hold %d repository locks\nstderr: %s", what, repoLocks(t, dir), p.errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// servingAddr waits for the agent's "serving on ADDR" line.
func servingAddr(t *testing.T, p *agentProc) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		out := p.out.String()
		if _, rest, ok := strings.Cut(out, "serving on "); ok {
			if addr, _, ok := strings.Cut(rest, " "); ok {
				return addr
			}
		}
		if time.Now().After(deadline) || p.cmd.ProcessState != nil {
			t.Fatalf("agent does not serve\nstdout: %s\nstderr: %s", out, p.errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
