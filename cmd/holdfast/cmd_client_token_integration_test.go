package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// TestTokenCommands creates, lists and revokes API tokens with the CLI: a
// viewer token (for Prometheus) reads /metrics and may not make tokens.
func TestTokenCommands(t *testing.T) {
	s := startTestServer(t)
	admin := clientEnv(t, s, s.admin)
	tok := strings.TrimSpace(admin.ok("token", "create", "prometheus", "--role", "viewer"))
	if len(tok) < 20 || strings.ContainsAny(tok, " \n") {
		t.Fatalf("token create printed %q, want the token alone", tok)
	}
	var toks []apitypes.Token
	if err := json.Unmarshal([]byte(admin.ok("token", "list", "--json")), &toks); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tk := range toks {
		found = found || (tk.Name == "prometheus" && tk.Role == "viewer")
	}
	if out := admin.ok("token", "list"); !found || strings.Contains(out, tok) || !strings.Contains(out, "prometheus") {
		t.Fatalf("token list: %+v\n%s", toks, out)
	}
	if code := getStatus(t, s, "/metrics", tok); code != http.StatusOK {
		t.Fatalf("viewer GET /metrics: HTTP %d", code)
	}
	viewer := clientEnv(t, s, tok)
	if r := viewer.run("token", "create", "mine", "--role", "administrator"); r.code == 0 || !strings.Contains(r.stderr, "your role may not create tokens") {
		t.Fatalf("viewer token create: exit %d %s", r.code, r.stderr)
	}
	for _, args := range [][]string{{"token", "create", "x", "--role", "monitor"}, {"token", "create", "x"}, {"token", "create"}} {
		if r := admin.run(args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d (%s)", args, r.code, exitUsage, r.stderr)
		}
	}
	if r := admin.run("token", "create", "prometheus", "--role", "viewer"); r.code == 0 {
		t.Error("a second token of the same name was created")
	}
	admin.ok("token", "delete", "prometheus")
	if code := getStatus(t, s, "/metrics", tok); code != http.StatusUnauthorized {
		t.Fatalf("revoked token GET /metrics: HTTP %d, want 401", code)
	}
}

// getStatus GETs path from the test server with token and returns the
// status.
func getStatus(t *testing.T, s testServer, path, token string) int {
	t.Helper()
	code, _ := httpsGet(t, s.ca, s.url+path, token)
	return code
}

// httpsGet GETs url, trusting the CA in caFile, with token ("" for none)
// and returns the status and body.
func httpsGet(t *testing.T, caFile, url, token string) (int, string) {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
