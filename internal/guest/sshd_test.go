package guest

import (
	"fmt"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/sshdtest"
	"golang.org/x/crypto/ssh"
)

// testSSHD is a real OpenSSH server (internal/testutil/sshdtest).
type testSSHD struct {
	addr      string
	hostKeyFP string // SHA256:… of its only host key
	clientKey []byte // PEM (OpenSSH format)
}

func (d *testSSHD) target(hostKey string) *SSHTarget {
	return &SSHTarget{Addr: d.addr, User: "root", Key: d.clientKey, HostKey: hostKey}
}

// startSSHD runs sshd for the test, or skips it (not root, no sshd).
func startSSHD(t *testing.T) *testSSHD {
	s := sshdtest.Start(t)
	return &testSSHD{addr: s.Addr, hostKeyFP: s.HostKey, clientKey: s.ClientKey}
}

func newKeyPair(t testing.TB) ([]byte, ssh.PublicKey) { return sshdtest.NewKeyPair(t) }

// closedAddr returns an address where nothing listens (connection refused).
func closedAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", sshdtest.FreePort(t))
}
