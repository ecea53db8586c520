package guest

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
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

const sshdPath = "/usr/sbin/sshd"

// testSSHD is an OpenSSH server on 127.0.0.1 that accepts clientKey for
// root.
type testSSHD struct {
	addr      string
	hostKeyFP string // SHA256:… of its only host key
	clientKey []byte // PEM (OpenSSH format)
	log       *lockedBuffer
}

func (d *testSSHD) target(hostKey string) *SSHTarget {
	return &SSHTarget{Addr: d.addr, User: "root", Key: d.clientKey, HostKey: hostKey}
}

// startSSHD runs sshd -D -e in a temporary directory, or skips the test
// when that is impossible (not root, no openssh-server).
func startSSHD(t *testing.T) *testSSHD {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a real sshd that logs in as root")
	}
	if _, err := os.Stat(sshdPath); err != nil {
		t.Skipf("needs %s (apt-get install openssh-server): %v", sshdPath, err)
	}
	// Privilege separation directory, created by the service unit normally.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hostPEM, hostPub := newKeyPair(t)
	clientPEM, clientPub := newKeyPair(t)
	writeFile(t, filepath.Join(dir, "host_key"), hostPEM)
	writeFile(t, filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub))
	port := freePort(t)
	cfg := fmt.Sprintf(`ListenAddress 127.0.0.1
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
	cmd := exec.Command(sshdPath, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"), "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", log.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd does not listen on %s: %v\n%s", addr, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &testSSHD{addr: addr, hostKeyFP: ssh.FingerprintSHA256(hostPub), clientKey: clientPEM, log: log}
}

// newKeyPair returns a fresh ed25519 private key in OpenSSH PEM format and
// its public key.
func newKeyPair(t testing.TB) ([]byte, ssh.PublicKey) {
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

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// closedAddr returns an address where nothing listens (connection refused).
func closedAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
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
