package configdb

import (
	"testing"

	"github.com/holdfast-backup/holdfast/internal/testutil/pgtest"
)

// TestPostgres runs the suite on PostgreSQL as found by pgtest (see its
// package comment: HOLDFAST_TEST_POSTGRES, else the local Debian cluster as
// root, else skip — or fail if HOLDFAST_REQUIRE_POSTGRES is set); each
// subtest gets its own schema.
func TestPostgres(t *testing.T) {
	pg := pgtest.Open(t)
	runSuite(t, backend{name: "postgres", freshDSN: func(t *testing.T) string {
		return pg.FreshDSN(t)
	}})
}
