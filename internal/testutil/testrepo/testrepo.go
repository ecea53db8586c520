// Package testrepo creates repositories for tests: encrypted, with the
// smallest chunk size and a key derivation cheap enough for tests.
package testrepo

import (
	"context"
	"testing"

	"github.com/holdfast-backup/holdfast/internal/repo"
	"github.com/holdfast-backup/holdfast/internal/repo/storage"
)

// Password is the password of every test repository.
const Password = "pw"

// FastKDF keeps tests quick; real repositories use repo.DefaultKDF.
func FastKDF() repo.KDFParams { return repo.KDFParams{Time: 1, Memory: 64, Threads: 1} }

// New initialises an encrypted repository with repo.MinChunkSize chunks
// on be (nil: a local backend in a new temporary directory) and closes it
// when the test ends.
func New(t testing.TB, be storage.Backend) *repo.Repository {
	t.Helper()
	if be == nil {
		be = storage.NewLocal(t.TempDir())
	}
	r, err := repo.Init(context.Background(), be, []byte(Password),
		repo.InitOptions{Encrypted: true, KDF: FastKDF(), ChunkSize: repo.MinChunkSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
