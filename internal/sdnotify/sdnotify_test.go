package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// listen opens a unixgram socket at name (a path, or "@x" for the abstract
// namespace) as systemd does for NOTIFY_SOCKET.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	addr := name
	if name[0] == '@' {
		addr = "\x00" + name[1:]
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // only a failure waits this long
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	for name, sock := range map[string]string{
		"path":     filepath.Join(t.TempDir(), "notify.sock"),
		"abstract": fmt.Sprintf("@holdfast-sdnotify-test-%d", os.Getpid()),
	} {
		t.Run(name, func(t *testing.T) {
			conn := listen(t, sock)
			env := func(k string) string {
				if k == "NOTIFY_SOCKET" {
					return sock
				}
				return ""
			}
			for _, state := range []string{Ready, Stopping} {
				sent, err := Notify(env, state)
				if err != nil || !sent {
					t.Fatalf("Notify(%s) = %v, %v", state, sent, err)
				}
				if got := receive(t, conn); got != state {
					t.Fatalf("received %q, want %q", got, state)
				}
			}
		})
	}
}

func TestNotifyWithoutSystemd(t *testing.T) {
	sent, err := Notify(func(string) string { return "" }, Ready)
	if sent || err != nil {
		t.Fatalf("no NOTIFY_SOCKET: Notify = %v, %v; want false, nil", sent, err)
	}
	for _, bad := range []string{"vsock:2:1234", "relative.sock"} {
		if _, err := Notify(func(string) string { return bad }, Ready); !errors.Is(err, ErrUnsupported) {
			t.Errorf("NOTIFY_SOCKET=%s: %v, want ErrUnsupported", bad, err)
		}
	}
	gone := filepath.Join(t.TempDir(), "gone.sock")
	if _, err := Notify(func(string) string { return gone }, Ready); err == nil {
		t.Error("a socket nobody listens on: no error")
	}
}
