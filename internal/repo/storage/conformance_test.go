package storage_test

import (
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
	"github.com/holdfast-backup/holdfast/internal/testutil/storagetest"
)

// TestLocalConformance runs the backend conformance suite against the local
// file-system backend, in a directory that does not exist yet.
func TestLocalConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		return storage.NewLocal(t.TempDir() + "/repo")
	})
}
