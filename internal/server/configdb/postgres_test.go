package configdb

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
)

// PostgreSQL for the suite, in this order:
//   - HOLDFAST_TEST_POSTGRES=postgres://user:pw@host:port/db: a database in
//     which the user may CREATE SCHEMA; each subtest gets its own schema.
//   - as root with Debian's postgresql installed: the local cluster is
//     started if down (pg_ctlcluster), a throwaway role and database are
//     created through psql run as the postgres user, and dropped at the end.
//   - otherwise the test is skipped, or fails if HOLDFAST_REQUIRE_POSTGRES is
//     set (CI sets it so a broken setup cannot pass as a skip).
func TestPostgres(t *testing.T) {
	base := postgresBase(t)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		t.Fatalf("connect to %s: %v", redact(base), err)
	}
	runSuite(t, backend{name: "postgres", freshDSN: func(t *testing.T) string {
		return freshSchema(t, admin, base)
	}})
}

func postgresBase(t *testing.T) string {
	if dsn := os.Getenv("HOLDFAST_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	_, err := exec.LookPath("pg_lsclusters")
	if os.Geteuid() == 0 && err == nil {
		return localCluster(t)
	}
	msg := "PostgreSQL tests need HOLDFAST_TEST_POSTGRES=postgres://… or root with Debian's postgresql package"
	if os.Getenv("HOLDFAST_REQUIRE_POSTGRES") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freshSchema creates an empty schema and returns base with its search_path.
func freshSchema(t *testing.T, admin *sql.DB, base string) string {
	t.Helper()
	name := "hf_" + randomHex(6)
	ctx := context.Background()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// localCluster starts the local Debian cluster if needed and makes a
// throwaway role and database, dropped when the test ends.
func localCluster(t *testing.T) string {
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
func psql(t *testing.T, port, command string) {
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

func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil {
		return u.Redacted()
	}
	return "(unparsable DSN)"
}

func redactPassword(command string) string {
	if i := strings.Index(command, "PASSWORD"); i >= 0 {
		return command[:i] + "PASSWORD '…'"
	}
	return command
}
