package pki

import (
	"os"

	"github.com/holdfast-backup/holdfast/internal/atomicfile"
)

// writeExclusive creates path with perm, failing if it exists, and syncs it.
func writeExclusive(path string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteNew(path, data, perm)
}

// writeAtomic replaces path with data (temp file, fsync, rename, fsync dir).
func writeAtomic(path string, data []byte, perm os.FileMode) error {
	return atomicfile.Write(path, data, perm)
}

// WriteKeyPair writes an issued certificate and key as certPath (0644) and
// keyPath (0600), atomically, for agents storing what the server issued.
func WriteKeyPair(certPath, keyPath string, certPEM, keyPEM []byte) error {
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writeAtomic(certPath, certPEM, 0o644)
}
