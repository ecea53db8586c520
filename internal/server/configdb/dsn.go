package configdb

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// sqliteParams: WAL, foreign keys, wait up to 10 s for a lock, and take the
// write lock at BEGIN so transactions never fail on lock upgrade.
const sqliteParams = "_busy_timeout=10000&_foreign_keys=1&_journal_mode=WAL&_txlock=immediate"

// target is a parsed DSN.
type target struct {
	dialect   *dialect
	driverDSN string
	path      string // SQLite file, "" for PostgreSQL
	display   string // for messages: no password
}

func parseDSN(dsn string) (*target, error) {
	switch {
	case dsn == "":
		return nil, invalid("empty database DSN")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		u, err := url.Parse(dsn)
		if err != nil {
			return nil, invalid("PostgreSQL DSN: %v", err)
		}
		return &target{dialect: postgresDialect(), driverDSN: dsn, display: u.Redacted()}, nil
	case strings.HasPrefix(dsn, "sqlite://"):
		return sqliteTarget(strings.TrimPrefix(dsn, "sqlite://"))
	case strings.HasPrefix(dsn, "sqlite:"):
		return sqliteTarget(strings.TrimPrefix(dsn, "sqlite:"))
	case strings.Contains(dsn, "://"):
		return nil, invalid("database DSN %q: want sqlite:///PATH, a path, or postgres://…", dsn)
	}
	return sqliteTarget(dsn)
}

func sqliteTarget(path string) (*target, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return nil, invalid("SQLite path %q: empty or contains ? or #", path)
	}
	if path == ":memory:" {
		return nil, invalid("SQLite :memory: is not supported: use a file (a temporary one in tests)")
	}
	return &target{
		dialect: sqliteDialect(), path: path, display: path,
		driverDSN: path + "?" + sqliteParams,
	}, nil
}

// prepare creates a missing SQLite file with mode 0600 (SQLite's own WAL and
// shared-memory files copy the mode) and checks its directory exists.
func (t *target) prepare() error {
	if t.path == "" {
		return nil
	}
	dir := filepath.Dir(t.path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("configdb: directory %s of %s does not exist", dir, t.path)
	}
	f, err := os.OpenFile(t.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("configdb: create %s: %w", t.path, err)
	}
	return f.Close()
}

func (t *target) configurePool(db *sql.DB) {
	if t.path != "" {
		// One writer at a time anyway; a few readers in WAL mode.
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4)
		db.SetConnMaxIdleTime(0)
		return
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(4)
}
