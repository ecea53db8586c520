package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
)

// Environment variables read by Base.
const (
	EnvDSN     = "HOLDFAST_TEST_POSTGRES"
	EnvRequire = "HOLDFAST_REQUIRE_POSTGRES"
)

// Base returns the DSN of a database in which tests may create schemas:
// HOLDFAST_TEST_POSTGRES if set, else (as root with Debian's postgresql) a
// throwaway role and database in the local cluster, dropped in t.Cleanup.
// Otherwise it skips t, or fails it if HOLDFAST_REQUIRE_POSTGRES is set.
func Base(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		return dsn
	}
	_, err := exec.LookPath("pg_lsclusters")
	if os.Geteuid() == 0 && err == nil {
		return localCluster(t)
	}
	msg := "PostgreSQL tests need " + EnvDSN + "=postgres://… or root with Debian's postgresql package"
	if os.Getenv(EnvRequire) != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FreshDSN returns the DSN of a new, empty schema (see the package comment),
// dropped in t.Cleanup. The DSN selects the schema with a search_path query
// parameter, so any pgx client, including another process, lands in it.
//
// Each call sets up its own base (with the local cluster: a role and a
// database); to hand out many schemas in one test, use Open and
// (*Server).FreshDSN.
func FreshDSN(t testing.TB) string {
	t.Helper()
	return Open(t).FreshDSN(t)
}

// Server is a connection to the Base database, used to create schemas.
type Server struct {
	base  string
	admin *sql.DB
}

// Open connects to Base(t) (skipping or failing like Base) and checks the
// connection; the connection is closed in t.Cleanup.
func Open(t testing.TB) *Server {
	t.Helper()
	base := Base(t)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", Redact(base), err)
	}
	t.Cleanup(func() { admin.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("connect to %s: %v", Redact(base), err)
	}
	return &Server{base: base, admin: admin}
}

// Base returns the base DSN (with its password: do not log it).
func (s *Server) Base() string { return s.base }

// DB returns the connection to the base database.
func (s *Server) DB() *sql.DB { return s.admin }

// FreshDSN creates an empty schema, dropped (CASCADE) in t.Cleanup, and
// returns the base DSN with search_path set to it. t may be a subtest of the
// test that opened s.
func (s *Server) FreshDSN(t testing.TB) string {
	t.Helper()
	u, err := url.Parse(s.base)
	if err != nil {
		t.Fatalf("parse %s: %v", Redact(s.base), err)
	}
	name := "hf_" + randomHex(6)
	ctx := context.Background()
	if _, err := s.admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := s.admin.ExecContext(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Redact returns dsn with its password masked, for messages.
func Redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return "(unparsable DSN)"
}

// localCluster starts the local Debian cluster if needed and makes a
// throwaway role and database, dropped when the test ends.
func localCluster(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("pg_lsclusters", "--no-header").Output()
	fields := strings.Fields(string(out))
	if err != nil || len(fields) < 4 {
		t.Fatalf("pg_lsclusters: %v %q", err, out)
	}
	version, cluster, port, status := fields[0], fields[1], fields[2], fields[3]
	if !strings.HasPrefix(status, "online") {
		start := exec.Command("pg_ctlcluster", version, cluster, "start")
		if out, err := start.CombinedOutput(); err != nil {
			t.Fatalf("pg_ctlcluster %s %s start: %v\n%s", version, cluster, err, out)
		}
		t.Logf("started PostgreSQL cluster %s/%s on port %s (left running)", version, cluster, port)
	}
	name := fmt.Sprintf("holdfast_test_%d_%s", os.Getpid(), randomHex(4))
	password := randomHex(16)
	psql(t, port, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", name, password))
	psql(t, port, fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, name))
	t.Cleanup(func() {
		psql(t, port, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
		psql(t, port, "DROP ROLE IF EXISTS "+name)
	})
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%s/%s?sslmode=disable", name, password, port, name)
}

// psql runs one SQL command as the postgres superuser (peer authentication).
func psql(t testing.TB, port, command string) {
	t.Helper()
	args := []string{"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-p", port, "-d", "postgres", "-c", command}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cmd *exec.Cmd
	if runuser, err := exec.LookPath("runuser"); err == nil {
		cmd = exec.CommandContext(ctx, runuser, append([]string{"-u", "postgres", "--"}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, "su", "postgres", "-s", "/bin/sh", "-c", shellJoin(args))
	}
	cmd.Dir = "/"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psql %q: %v\n%s", redactPassword(command), err, out)
	}
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func redactPassword(command string) string {
	if i := strings.Index(command, "PASSWORD"); i >= 0 {
		return command[:i] + "PASSWORD '…'"
	}
	return command
}
