package configdb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// Store is an open configuration database.
type Store struct {
	db        *sql.DB
	d         *dialect
	now       func() time.Time
	secretKey []byte // derived from the master key; nil without one
	keyID     string
	observer  Observer // nil: none
}

type options struct {
	now       func() time.Time
	masterKey []byte
	observer  Observer
}

// Option configures Open.
type Option func(*options)

// WithClock sets the clock for every time the store records or compares.
func WithClock(c clock.Clock) Option { return func(o *options) { o.now = clock.Or(c).Now } }

// WithMasterKey sets the server master key (32 bytes) that protects secrets.
// Without it PutSecret and GetSecret fail with ErrNoMasterKey.
func WithMasterKey(key []byte) Option {
	return func(o *options) { o.masterKey = append([]byte(nil), key...) }
}

// Open opens the database named by dsn (see the package documentation),
// creating a new SQLite file if needed, and applies pending migrations.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	o := options{now: clock.Real().Now}
	for _, opt := range opts {
		opt(&o)
	}
	t, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if err := t.prepare(); err != nil {
		return nil, err
	}
	db, err := sql.Open(t.dialect.driver, t.driverDSN)
	if err != nil {
		return nil, fmt.Errorf("configdb: open %s: %w", t.display, err)
	}
	t.configurePool(db)
	s := &Store{db: db, d: t.dialect, now: o.now, observer: o.observer}
	if err := s.setMasterKey(o.masterKey); err != nil {
		db.Close()
		return nil, err
	}
	if err := ping(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("configdb: connect to %s: %w", t.display, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("configdb: %s: %w", t.display, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Backend returns "sqlite" or "postgres".
func (s *Store) Backend() string { return s.d.name }

// DB returns the underlying handle, for health checks and tests; the schema
// is this package's, so write through the typed API.
func (s *Store) DB() *sql.DB { return s.db }

// timestamp is the store's current time as stored: UTC, microseconds.
func (s *Store) timestamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// ping connects, retrying for a while when SQLite reports the database busy
// while the connection is set up (switching a new database to WAL, or
// recovering the WAL index, is not covered by the busy timeout when several
// processes open the same new database at once). It waits on the real
// clock: for other processes.
func ping(ctx context.Context, db *sql.DB) error {
	clk := clock.Real()
	wait := 20 * time.Millisecond
	deadline := clk.Now().Add(10 * time.Second)
	for {
		err := db.PingContext(ctx)
		if err == nil || !strings.Contains(err.Error(), "SQLITE_BUSY") || clk.Now().After(deadline) {
			return err
		}
		if clk.Sleep(ctx, wait) != nil {
			return err
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
