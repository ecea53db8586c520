package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func startServer(t *testing.T, dir string) (string, context.CancelFunc, chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{DataDir: dir, Listen: "127.0.0.1:0", Ready: func(a string) { ready <- a }})
	}()
	select {
	case addr := <-ready:
		return addr, cancel, done
	case err := <-done:
		cancel()
		t.Fatalf("server did not start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("server did not start in 30 s")
	}
	return "", cancel, done
}

func client(t *testing.T, dir string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func get(t *testing.T, c *http.Client, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestFirstStartAndRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	addr, stop, done := startServer(t, dir)
	for _, f := range []string{"admin.token", "master.key", "ca-key.pem"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v mode %v", f, err, st.Mode())
		}
	}
	tokBytes, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	token := strings.TrimSpace(string(tokBytes))
	c := client(t, dir)
	base := "https://" + addr + "/api/v1"
	tests := []struct {
		path, token string
		want        int
	}{
		{"/health", "", 200},
		{"/jobs", "", 401},
		{"/jobs", "not-a-token", 401},
		{"/jobs", token, 200},
		{"/openapi.json", token, 200},
	}
	for _, tc := range tests {
		if got := get(t, c, base+tc.path, tc.token); got != tc.want {
			t.Errorf("GET %s (token %v): %d, want %d", tc.path, tc.token != "", got, tc.want)
		}
	}
	db, _ := os.ReadFile(filepath.Join(dir, "holdfast.db"))
	if strings.Contains(string(db), token) {
		t.Fatal("the administrator token is stored in clear")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	// A restart keeps the CA, the key and the token.
	addr, stop, done = startServer(t, dir)
	defer func() { stop(); <-done }()
	if again, _ := os.ReadFile(filepath.Join(dir, "admin.token")); string(again) != string(tokBytes) {
		t.Fatal("admin.token was rewritten")
	}
	if got := get(t, client(t, dir), "https://"+addr+"/api/v1/jobs", token); got != 200 {
		t.Fatalf("token after restart: %d", got)
	}
}

// A second server on a data directory in use fails at once with
// ErrDataDirLocked, naming the directory and the holder's PID; the first
// one goes on serving.
func TestDataDirLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	addr, stop, done := startServer(t, dir)
	defer func() { stop(); <-done }()
	err := Run(context.Background(), Options{DataDir: dir, Listen: "127.0.0.1:0"})
	if !errors.Is(err, ErrDataDirLocked) || !strings.Contains(err.Error(), dir) ||
		!strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Fatalf("second server: %v, want ErrDataDirLocked naming %s and pid %d", err, dir, os.Getpid())
	}
	if st := get(t, client(t, dir), "https://"+addr+"/api/v1/health", ""); st != 200 {
		t.Fatalf("first server's health: %d", st)
	}
}
