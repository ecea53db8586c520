package agent

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// Files of an agent's state directory.
const (
	CertFile = "agent.pem"
	KeyFile  = "agent-key.pem"
	CAFile   = "ca.pem"
)

// SaveState writes c into dir (created with mode 0700; the key 0600).
func SaveState(dir string, c *Credentials) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, CAFile), c.CAPEM, 0o644); err != nil {
		return err
	}
	return pki.WriteKeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile), c.CertPEM, c.KeyPEM)
}

// LoadState reads the credentials in dir and checks they are for role and
// name. Without state it returns an error satisfying errors.Is(err,
// fs.ErrNotExist).
func LoadState(dir, role, name string) (*Credentials, error) {
	var c Credentials
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{CertFile, &c.CertPEM}, {KeyFile, &c.KeyPEM}, {CAFile, &c.CAPEM}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return nil, err
		}
		*f.dst = b
	}
	if _, err := c.Certificate(); err != nil {
		return nil, fmt.Errorf("agent state %s: %w", dir, err)
	}
	r, n, err := c.Identity()
	if err != nil {
		return nil, fmt.Errorf("agent state %s: %w", dir, err)
	}
	if r != role || n != name {
		return nil, fmt.Errorf("agent state %s is for %s %q, not %s %q (use another --state-dir)", dir, r, n, role, name)
	}
	return &c, nil
}
