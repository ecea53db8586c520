// Package sshdtest runs a real OpenSSH server for tests: sshd -D on
// 127.0.0.1 with a fresh host key, accepting one fresh client key for root.
// It is a non-test package so any package's tests can use it (guest
// processing unit tests, the distributed end-to-end test).
package sshdtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// Path is where Debian's openssh-server installs sshd.
const Path = "/usr/sbin/sshd"

// Server is a running sshd.
type Server struct {
	Addr      string // 127.0.0.1:port
	HostKey   string // SHA256:… fingerprint of its only host key
	HostPub   ssh.PublicKey
	ClientKey []byte // PEM (OpenSSH format) private key it accepts for root
	log       *lockedBuffer
}

// Log returns sshd's log so far.
func (s *Server) Log() string { return s.log.String() }

// Start runs sshd -D -e in a temporary directory until the test ends, or
// skips the test when that is impossible (not root, no openssh-server).
// config lines go first into sshd_config, so they override the defaults
// (sshd keeps the first value of a keyword), e.g. "LogLevel DEBUG1" to see
// the channels opened (its debug lines also reach sessions' stderr).
func Start(t testing.TB, config ...string) *Server {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a real sshd that logs in as root")
	}
	if _, err := os.Stat(Path); err != nil {
		t.Skipf("needs %s (apt-get install openssh-server): %v", Path, err)
	}
	// Privilege separation directory, created by the service unit normally.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hostPEM, hostPub := NewKeyPair(t)
	clientPEM, clientPub := NewKeyPair(t)
	writeFile(t, filepath.Join(dir, "host_key"), hostPEM)
	writeFile(t, filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub))
	port := FreePort(t)
	cfg := strings.Join(append(config, ""), "\n") + fmt.Sprintf(`ListenAddress 127.0.0.1
HostKey %[1]s/host_key
PidFile %[1]s/sshd.pid
AuthorizedKeysFile %[1]s/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
LogLevel VERBOSE
`, dir)
	writeFile(t, filepath.Join(dir, "sshd_config"), []byte(cfg))

	log := &lockedBuffer{}
	cmd := exec.Command(Path, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"), "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := clock.Real().Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if clock.Real().Now().After(deadline) {
			t.Fatalf("sshd does not listen on %s: %v\n%s", addr, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Server{Addr: addr, HostKey: ssh.FingerprintSHA256(hostPub), HostPub: hostPub, ClientKey: clientPEM, log: log}
}

// NewKeyPair returns a fresh ed25519 private key in OpenSSH PEM format and
// its public key.
func NewKeyPair(t testing.TB) ([]byte, ssh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block), sshPub
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
