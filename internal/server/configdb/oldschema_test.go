package configdb

import (
	"context"
	"database/sql"
	"slices"
	"testing"
)

// oldSchema is a fresh database of backend b holding the schema as it was
// just before the migration named before: the migration tests write rows
// the old way into Store (through DB), close DB, then Open DSN to upgrade.
type oldSchema struct {
	DSN   string
	DB    *sql.DB
	Store *Store
}

func openOldSchema(ctx context.Context, t *testing.T, b backend, before string, clk *testClock) oldSchema {
	t.Helper()
	dsn := b.freshDSN(t)
	tg, err := parseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.prepare(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open(tg.dialect.driver, tg.driverDSN)
	if err != nil {
		t.Fatal(err)
	}
	tg.configurePool(db)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	n := slices.IndexFunc(ms, func(m migration) bool { return m.name == before })
	if n < 1 {
		t.Fatalf("no migration %q after the first in %d migrations", before, len(ms))
	}
	old := &Store{db: db, d: tg.dialect, now: clk.now}
	if err := old.migrateTo(ctx, ms[:n]); err != nil {
		t.Fatal(err)
	}
	return oldSchema{DSN: dsn, DB: db, Store: old}
}
