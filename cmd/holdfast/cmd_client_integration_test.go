package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdfast-backup/holdfast/internal/jobdef"
	"github.com/holdfast-backup/holdfast/internal/server"
	"github.com/holdfast-backup/holdfast/internal/server/apiclient"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// testServer is an in-process holdfast server.
type testServer struct {
	url, ca, admin string
}

func startTestServer(t *testing.T) testServer {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- server.Run(ctx, server.Options{DataDir: dir, Listen: "127.0.0.1:0", Ready: func(a string) { ready <- a }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("server did not start")
	}
	tok, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return testServer{url: "https://" + addr, ca: filepath.Join(dir, "ca.pem"), admin: strings.TrimSpace(string(tok))}
}

// createToken makes an API token of role through the REST API.
func (s testServer) createToken(t *testing.T, name, role string) string {
	t.Helper()
	pem, err := os.ReadFile(s.ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var out apitypes.NewToken
	err = apiclient.New(s.url, hc, s.admin).Do(context.Background(), "POST", "/api/v1/tokens",
		apitypes.TokenRequest{Name: name, Role: role}, &out)
	if err != nil || out.Token == "" {
		t.Fatalf("create token: %v", err)
	}
	return out.Token
}

func clientEnv(t *testing.T, s testServer, token string) *env {
	e := newEnv(t)
	e.vars = append(e.vars, "HOLDFAST_SERVER="+s.url, "HOLDFAST_CA="+s.ca, "HOLDFAST_TOKEN="+token)
	return e
}

// noSecret fails if secret appears in a command's output.
func noSecret(t *testing.T, secret string, r result) {
	t.Helper()
	if strings.Contains(r.stdout+r.stderr, secret) {
		t.Fatalf("output shows a secret:\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
	}
}

func TestClientAgentsAndSources(t *testing.T) {
	s := startTestServer(t)
	e := clientEnv(t, s, s.admin)
	for _, role := range []string{"proxy", "repository"} {
		out := e.ok(role, "token")
		if !regexp.MustCompile(`^\S+\n$`).MatchString(out) {
			t.Fatalf("%s token printed %q, want a single token line", role, out)
		}
		e.ok(role, "list")
	}
	e.ok("source", "add", "img1", "--type", "image", "--address", "/srv/vm1.img")
	if out := e.ok("source", "list"); !strings.Contains(out, "img1") || !strings.Contains(out, "/srv/vm1.img") {
		t.Fatalf("source list:\n%s", out)
	}
	if r := e.run("source", "add", "img1", "--type", "image", "--address", "/x"); r.code == 0 {
		t.Fatal("duplicate source accepted")
	}
	for _, r := range []result{e.run("proxy", "token"), e.run("job", "list"), e.run("source", "list")} {
		noSecret(t, s.admin, r)
	}
}

func TestClientJobRoundTrip(t *testing.T) {
	s := startTestServer(t)
	e := clientEnv(t, s, s.admin)
	const password = "job-secret-Zq7xW"
	pwFile := filepath.Join(e.dir, "pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var outputs []result
	run := func(args ...string) string {
		t.Helper()
		r := e.run(args...)
		outputs = append(outputs, r)
		if r.code != 0 {
			t.Fatalf("holdfast %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r.stdout
	}
	run("job", "create", "nightly", "--vm", "vm1=/path/to/vm1.img", "--repository", "repo1",
		"--password-file", pwFile, "--schedule", "0 2 * * *", "--retention-last", "7", "--chunk-size", "1MiB")
	// A second job of that name: the user reads which one exists, no SQL.
	if r := e.run("job", "create", "nightly", "--vm", "vm1=/path/to/vm1.img", "--repository", "repo1",
		"--password-file", pwFile); r.code != exitFailure || !strings.Contains(r.stderr, "a job named nightly already exists") ||
		strings.Contains(r.stderr, "constraint") || strings.Contains(r.stderr, "configdb") {
		t.Fatalf("duplicate job: exit %d, want %d and a plain message: %s", r.code, exitFailure, r.stderr)
	}
	if out := run("job", "list"); !regexp.MustCompile(`nightly\s+backup\s+yes\s+0 2 \* \* \*\s+repo1\s+vm1=/path/to/vm1.img\s+\d{4}-\d\d-\d\d 02:00:00\s+-`).MatchString(out) {
		t.Fatalf("job list:\n%s", out)
	}
	out := run("job", "show", "nightly")
	for _, want := range []string{"repo1", "keep last 7", "1.0 MiB", "sealed on the server"} {
		if !strings.Contains(out, want) {
			t.Fatalf("job show lacks %q:\n%s", want, out)
		}
	}
	run("job", "edit", "nightly", "--vm", "vm2=/a.img,/b.img", "--password-file", pwFile)
	var j struct {
		Schedule   string
		Enabled    bool
		Definition struct {
			Repository string
			VMs        []jobdef.VM
		}
	}
	if err := json.Unmarshal([]byte(run("job", "show", "nightly", "--json")), &j); err != nil {
		t.Fatal(err)
	}
	if j.Schedule != "0 2 * * *" || j.Definition.Repository != "repo1" || len(j.Definition.VMs) != 1 ||
		j.Definition.VMs[0].Name != "vm2" || len(j.Definition.VMs[0].Disks) != 2 {
		t.Fatalf("after edit: %+v", j)
	}
	run("job", "disable", "nightly")
	if out := run("job", "list", "--json"); !strings.Contains(out, `"enabled": false`) {
		t.Fatalf("disabled job:\n%s", out)
	}
	run("job", "enable", "nightly")
	checkRunSession(t, e, run)
	if out := run("job", "show", "nightly"); !regexp.MustCompile(`Last run:\s+failed \(session \d+, `).MatchString(out) {
		t.Fatalf("job show after a failed run:\n%s", out)
	}
	run("job", "delete", "nightly")
	r := e.run("job", "show", "nightly")
	outputs = append(outputs, r)
	if r.code == 0 || !strings.Contains(r.stderr, "nightly") {
		t.Fatalf("deleted job still shown: %d %s", r.code, r.stderr)
	}
	for _, r := range outputs {
		noSecret(t, password, r)
		noSecret(t, s.admin, r)
	}
}

// checkRunSession runs a job whose repository is not registered: the run
// is refused with the reason and its session recorded as failed.
func checkRunSession(t *testing.T, e *env, run func(...string) string) {
	t.Helper()
	r := e.run("job", "run", "nightly", "--wait", "--json")
	if r.code == 0 || !strings.Contains(r.stderr, `repository "repo1" is not registered`) {
		t.Fatalf("job run: exit %d, %s", r.code, r.stderr)
	}
	var sessions []struct {
		ID     int64
		State  string
		Result json.RawMessage
	}
	if err := json.Unmarshal([]byte(run("session", "list", "--job", "nightly", "--json")), &sessions); err != nil || len(sessions) == 0 {
		t.Fatalf("session list: %v %v", sessions, err)
	}
	if se := sessions[0]; se.State != "failed" || !strings.Contains(string(se.Result), "not registered") {
		t.Fatalf("session: %+v %s", se, se.Result)
	}
	out := run("session", "show", strconv.FormatInt(sessions[0].ID, 10))
	if !strings.Contains(out, "nightly") || !strings.Contains(out, "failed") {
		t.Fatalf("session show:\n%s", out)
	}
}

func TestClientRefusals(t *testing.T) {
	s := startTestServer(t)
	noTok := clientEnv(t, s, "")
	r := noTok.run("job", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "the server refused the token") {
		t.Fatalf("no token: exit %d, %s", r.code, r.stderr)
	}
	viewer := clientEnv(t, s, s.createToken(t, "viewer1", "viewer"))
	viewer.ok("job", "list")
	r = viewer.run("job", "create", "j1", "--vm", "vm1=/x.img", "--repository", "repo1")
	if r.code == 0 || !strings.Contains(r.stderr, "your role may not create jobs") {
		t.Fatalf("viewer create: exit %d, %s", r.code, r.stderr)
	}
	r = viewer.run("proxy", "token")
	if r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, "your role may not") {
		t.Fatalf("viewer proxy token: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
	down := clientEnv(t, s, s.admin)
	down.vars = append(down.vars, "HOLDFAST_SERVER=https://127.0.0.1:1")
	r = down.run("job", "list")
	if r.code == 0 || !strings.Contains(r.stderr, "https://127.0.0.1:1") || !strings.Contains(r.stderr, "refused") {
		t.Fatalf("server down: exit %d, %s", r.code, r.stderr)
	}
	noTok.vars = append(noTok.vars, "HOLDFAST_SERVER=")
	if r := noTok.run("job", "list"); r.code != exitUsage {
		t.Fatalf("no server: exit %d, %s", r.code, r.stderr)
	}
}

// TestClientJobRefused: an invalid job is refused before it is sent (a
// usage error naming the flag or field) or by the server (an "after"
// cycle, which needs the other jobs); nothing is stored.
func TestClientJobRefused(t *testing.T) {
	s := startTestServer(t)
	e := clientEnv(t, s, s.admin)
	base := []string{"job", "create", "j", "--vm", "vm1=/images/vm1.img", "--repository", "repo1"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--compression", "fast"}, "the repository's"},
		{[]string{"--schedule", "0 25 * * *"}, "--schedule"},
		{[]string{"--schedule", "dayly 03:00"}, "dayly"},
		{[]string{"--chunk-size", "1000"}, "definition.chunk_size"},
		{[]string{"--transport", "pigeon"}, "definition.transport"},
		{[]string{"--format", "qcow2=raw", "--follow-backing"}, "definition.follow_backing"},
	} {
		r := e.run(append(append([]string{}, base...), tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("job create %v: exit %d, %s; want exit %d naming %s", tc.args, r.code, r.stderr, exitUsage, tc.want)
		}
	}
	if r := e.run("job", "create", "j", "--repository", "repo1"); r.code != exitUsage {
		t.Errorf("job create without VMs: exit %d, %s", r.code, r.stderr)
	}
	e.ok("job", "create", "a", "--vm", "vm1=/images/vm1.img", "--repository", "repo1", "--schedule", "after b")
	e.ok("job", "create", "b", "--vm", "vm2=/images/vm2.img", "--repository", "repo1")
	r := e.run("job", "edit", "b", "--schedule", "after a")
	if r.code == 0 || !strings.Contains(r.stderr, "schedule") || !strings.Contains(r.stderr, "cycle") {
		t.Errorf("after cycle: exit %d, %s", r.code, r.stderr)
	}
	if out := e.ok("job", "list"); strings.Contains(out, "after a") || strings.Contains(out, "\nj ") {
		t.Errorf("a refused job was stored:\n%s", out)
	}
}
