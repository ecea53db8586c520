package configdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// querier is a *sql.DB or a *sql.Tx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) exec(ctx context.Context, q querier, query string, args ...any) (sql.Result, error) {
	return q.ExecContext(ctx, s.d.rebind(query), s.d.args(args)...)
}

func (s *Store) query(ctx context.Context, q querier, query string, args ...any) (*sql.Rows, error) {
	return q.QueryContext(ctx, s.d.rebind(query), s.d.args(args)...)
}

func (s *Store) queryRow(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	return q.QueryRowContext(ctx, s.d.rebind(query), s.d.args(args)...)
}

// execOne runs a statement that must affect exactly one row: ErrNotFound otherwise.
func (s *Store) execOne(ctx context.Context, op, query string, args ...any) error {
	res, err := s.exec(ctx, s.db, query, args...)
	if err != nil {
		return s.wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return s.wrap(op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	return nil
}

// inTx runs fn in a transaction, committing if it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// timeCol scans a timestamp column of either backend; NULL leaves it zero.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*c.t = time.Time{}
	case time.Time:
		*c.t = x.UTC()
	case string:
		return c.parse(x)
	case []byte:
		return c.parse(string(x))
	default:
		return fmt.Errorf("configdb: timestamp column holds %T", v)
	}
	return nil
}

func (c timeCol) parse(s string) error {
	for _, layout := range []string{sqliteTimeLayout, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			*c.t = t.UTC()
			return nil
		}
	}
	return fmt.Errorf("configdb: bad timestamp %q", s)
}

// optTime is nil for the zero time, for nullable columns.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// jsonCol scans a nullable JSON text column.
type jsonCol struct{ j *json.RawMessage }

func (c jsonCol) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*c.j = nil
	case string:
		*c.j = json.RawMessage(x)
	case []byte:
		*c.j = append(json.RawMessage(nil), x...)
	default:
		return fmt.Errorf("configdb: JSON column holds %T", v)
	}
	return nil
}

// jsonArg validates a JSON value for storage; empty gives def (nil: NULL).
func jsonArg(field string, j json.RawMessage, def any) (any, error) {
	if len(j) == 0 {
		return def, nil
	}
	if !json.Valid(j) {
		return nil, invalid("%s is not valid JSON", field)
	}
	return string(j), nil
}
