package configdb

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sqliteBackend() backend {
	return backend{name: "sqlite", freshDSN: func(t *testing.T) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "holdfast.db")
	}}
}

func TestSQLite(t *testing.T) { runSuite(t, sqliteBackend()) }

// TestSQLiteFileHoldsNoPlaintext greps the database files' bytes for tokens
// and secret values.
func TestSQLiteFileHoldsNoPlaintext(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "holdfast.db")
	s, err := Open(ctx, path, WithMasterKey(testMasterKey))
	if err != nil {
		t.Fatal(err)
	}
	api, err := s.CreateAPIToken(ctx, "admin", RoleAdministrator)
	if err != nil {
		t.Fatal(err)
	}
	join, err := s.CreateJoinToken(ctx, AgentRepository, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("esxi-root-password-7f3a9c")
	if err := s.PutSecret(ctx, "esxi", secret); err != nil {
		t.Fatal(err)
	}
	// Check the files both before (WAL not yet checkpointed) and after Close.
	for _, phase := range []string{"open", "closed"} {
		if phase == "closed" {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		var all []byte
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			b, err := os.ReadFile(path + suffix)
			if err == nil {
				all = append(all, b...)
			}
		}
		if !bytes.Contains(all, []byte("admin")) {
			t.Fatalf("%s: sanity: token name not found in %d bytes of database files", phase, len(all))
		}
		for _, needle := range [][]byte{[]byte(api), []byte(join), []byte(api[4:]), []byte(join[4:]), secret} {
			if bytes.Contains(all, needle) {
				t.Fatalf("%s: database files contain %q in clear", phase, needle)
			}
		}
	}
}

func TestSQLiteFileModeAndDSNForms(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "holdfast.db")
	for _, dsn := range []string{path, "sqlite://" + path, "sqlite:" + path} {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open(%q): %v", dsn, err)
		}
		if s.Backend() != "sqlite" {
			t.Fatalf("backend %s", s.Backend())
		}
		if _, err := s.CreateAPIToken(ctx, "t-"+strings.ReplaceAll(dsn, "/", "_"), RoleViewer); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{path, path + "-wal"} {
			st, err := os.Stat(f)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("%s: mode %#o, want 0600", f, st.Mode().Perm())
			}
		}
		s.Close()
	}
	if _, err := Open(ctx, filepath.Join(dir, "missing", "holdfast.db")); err == nil ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing directory: %v", err)
	}
}

func TestParseDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn, backend, display string
		ok                    bool
	}{
		{"/var/lib/holdfast/holdfast.db", "sqlite", "/var/lib/holdfast/holdfast.db", true},
		{"sqlite:///var/lib/h.db", "sqlite", "/var/lib/h.db", true},
		{"sqlite:rel.db", "sqlite", "rel.db", true},
		{"postgres://holdfast:hunter2@db.example/holdfast?sslmode=require", "postgres",
			"postgres://holdfast:xxxxx@db.example/holdfast?sslmode=require", true},
		{"postgresql://u@h/d", "postgres", "postgresql://u@h/d", true},
		{"", "", "", false},
		{"mysql://x", "", "", false},
		{":memory:", "", "", false},
		{"/tmp/a?b.db", "", "", false},
	} {
		tg, err := parseDSN(tc.dsn)
		if (err == nil) != tc.ok {
			t.Errorf("parseDSN(%q): %v", tc.dsn, err)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("parseDSN(%q): %v, want ErrInvalid", tc.dsn, err)
			}
			continue
		}
		if tg.dialect.name != tc.backend || tg.display != tc.display {
			t.Errorf("parseDSN(%q) = %s %q", tc.dsn, tg.dialect.name, tg.display)
		}
	}
}

func TestDialect(t *testing.T) {
	pg, lite := postgresDialect(), sqliteDialect()
	q := "SELECT a FROM t WHERE b = ? AND c = '?' AND d IN (?, ?)"
	if got := pg.rebind(q); got != "SELECT a FROM t WHERE b = $1 AND c = '?' AND d IN ($2, $3)" {
		t.Fatalf("rebind: %s", got)
	}
	if lite.rebind(q) != q {
		t.Fatal("sqlite rebind changed the query")
	}
	stmts := lite.statements("-- c; x\nCREATE TABLE a (id {{id}}, t {{time}}); -- trailing\n\nCREATE INDEX i ON a (t);\n")
	if len(stmts) != 2 || !strings.Contains(stmts[0], "INTEGER PRIMARY KEY AUTOINCREMENT") {
		t.Fatalf("statements: %q", stmts)
	}
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		t.Fatalf("migrations: %v", err)
	}
	for _, m := range ms {
		for _, st := range pg.statements(m.body) {
			if strings.Contains(st, "{{") {
				t.Fatalf("unreplaced token in %s: %s", m.name, st)
			}
		}
	}
}
