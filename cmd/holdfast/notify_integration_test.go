package main

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServerNotifiesSystemd runs `holdfast server` as systemd runs a
// Type=notify unit (NOTIFY_SOCKET, a unixgram socket): READY=1 comes once
// the API answers, STOPPING=1 when SIGTERM begins the shutdown.
func TestServerNotifiesSystemd(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(e.dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data, listen := filepath.Join(e.dir, "server"), freeAddr(t)
	e.vars = append(e.vars, "NOTIFY_SOCKET="+sock)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, "server", "--data-dir", data, "--listen", listen, "--log-format", "json")
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	receive := func() string {
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(time.Minute)) // only a failure waits this long
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v\n%s", err, stderr.String())
		}
		return string(buf[:n])
	}
	if got := receive(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if code, _ := httpsGet(t, filepath.Join(data, "ca.pem"), "https://"+listen+"/api/v1/health", ""); code != http.StatusOK {
		t.Fatalf("health after READY=1: HTTP %d", code)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := receive(); got != "STOPPING=1" {
		t.Fatalf("notification after SIGTERM %q, want STOPPING=1", got)
	}
	_ = cmd.Wait()
	checkLogLines(t, "server --log-format json", stderr.String(), true)
	if !strings.Contains(stderr.String(), `"level":"INFO"`) {
		t.Errorf("server log has no info lines at the default level:\n%s", stderr.String())
	}
}
