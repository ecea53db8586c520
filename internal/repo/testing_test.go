package repo

import (
	"context"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// fastKDF keeps tests quick; real repositories use DefaultKDF.
var fastKDF = KDFParams{Time: 1, Memory: 64, Threads: 1}

func newTestRepo(t testing.TB, encrypted bool) (*Repository, *storage.Local) {
	t.Helper()
	be := storage.NewLocal(t.TempDir())
	r, err := Init(context.Background(), be, []byte("secret"), InitOptions{Encrypted: encrypted, KDF: fastKDF, ChunkSize: MinChunkSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, be
}
