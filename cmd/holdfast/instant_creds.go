package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// The file names of QEMU's tls-creds-x509 (endpoint=client), which libnbd's
// tls-certificates reads too.
var nbdCredsFiles = []string{"ca-cert.pem", "client-cert.pem", "client-key.pem"}

// nbdCredsDir is where a server-run session's NBD client credentials go:
// dir (--nbd-creds), or a new directory under parent named after the
// session. Files are created, never overwritten.
type nbdCredsDir struct{ dir, parent string }

// prepareNBDCreds checks, before the session starts, that the credentials
// can be written: dir must not hold them already.
func (a *app) prepareNBDCreds(stateDir, dir string) (nbdCredsDir, error) {
	if dir == "" {
		parent, _, err := a.instantState(stateDir)
		return nbdCredsDir{parent: parent}, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nbdCredsDir{}, err
	}
	for _, f := range nbdCredsFiles {
		if _, err := os.Lstat(filepath.Join(abs, f)); err == nil {
			return nbdCredsDir{}, usageError{fmt.Errorf("--nbd-creds %s already holds %s: give an empty or new directory", abs, f)}
		}
	}
	return nbdCredsDir{dir: abs}, nil
}

// writeClient writes the client certificate and its key (readable by the
// owner only).
func (c nbdCredsDir) writeClient(cert, key []byte) error {
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return fmt.Errorf("NBD client credentials: %w", err)
	}
	if err := createFile(filepath.Join(c.dir, "client-key.pem"), key, 0o600); err != nil {
		return err
	}
	return createFile(filepath.Join(c.dir, "client-cert.pem"), cert, 0o644)
}

// writeCA writes ca-cert.pem: the CA certificate of the exports'
// certificate, then that of the client certificate (QEMU checks its own
// certificate against the file too).
func (c nbdCredsDir) writeCA(exportsCA, clientCA []byte) error {
	if len(exportsCA) == 0 {
		return errors.New("the mount server reported no CA certificate for its NBD exports")
	}
	pem := append(append(append([]byte(nil), exportsCA...), '\n'), clientCA...)
	return createFile(filepath.Join(c.dir, "ca-cert.pem"), pem, 0o644)
}

// createFile writes a new file; an existing one is left alone.
func createFile(path string, data []byte, mode os.FileMode) error {
	if err := pki.WriteNew(path, data, mode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists: not overwritten", path)
		}
		return fmt.Errorf("NBD client credentials: %w", err)
	}
	return nil
}
