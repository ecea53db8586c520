package pgtest

import (
	"context"
	"database/sql"
	"net/url"
	"strings"
	"testing"
)

// TestFreshDSN checks that a new pgx connection opened from the DSN alone
// (as another process would) lands in the fresh, empty schema.
func TestFreshDSN(t *testing.T) {
	dsn := FreshDSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	if !strings.HasPrefix(schema, "hf_") {
		t.Fatalf("search_path %q", schema)
	}
	if p, ok := u.User.Password(); ok && strings.Contains(Redact(dsn), p) {
		t.Fatal("Redact keeps the password")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (x int)"); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := db.QueryRowContext(ctx,
		"SELECT table_schema FROM information_schema.tables WHERE table_name = 't'").Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != schema {
		t.Fatalf("table in schema %q, want %q", got, schema)
	}
}
