package configdb

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Errors callers branch on; both backends map to them. The first four
// reach users through the API (404, 409, 401, 400), so their texts name no
// package.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrUnauthorized = errors.New("unauthorized")
	ErrInvalid      = errors.New("invalid argument")
	ErrNoMasterKey  = errors.New("configdb: no master key configured for secrets")
	ErrSchemaTooNew = errors.New("configdb: database schema is newer than this program")
)

// errClass is what a driver error means, independent of the driver.
type errClass int

const (
	errOther errClass = iota
	errUnique
	errForeignKey
	errCheck
)

// ConflictError is a unique constraint violation: a record of that kind
// and name exists. Its message is meant for users ("a job named nightly
// already exists") and carries no SQL; errors.Is(err, ErrConflict) holds.
type ConflictError struct {
	Kind string // "job", "source", "API token", …
	Name string // "" when the record has no name users give
	err  error  // the driver's error, for Unwrap
}

func (e *ConflictError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("such %s already exists", article(e.Kind))
	}
	return fmt.Sprintf("%s named %s already exists", article(e.Kind), e.Name)
}

// article puts "a" or "an" before a kind ("an API token", "a job", "a user").
func article(kind string) string {
	if kind != "" && strings.ContainsRune("AEIOUaeiou", rune(kind[0])) && !strings.HasPrefix(kind, "user") {
		return "an " + kind
	}
	return "a " + kind
}

// Is makes a ConflictError match ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

func (e *ConflictError) Unwrap() error { return e.err }

// tableKind names what a table holds, for conflict messages.
func tableKind(table string) string {
	switch table {
	case "api_tokens":
		return "API token"
	case "users":
		return "user"
	case "join_tokens":
		return "join token"
	case "notification_targets":
		return "notification target"
	case "jobs", "sources", "agents", "secrets", "points", "sessions", "tasks":
		return strings.TrimSuffix(table, "s")
	}
	return "record"
}

// wrap turns a driver error from operation op into one of the package errors
// where one applies. A constraint violation's message names no SQL: the
// driver's error stays reachable through errors.As only.
func (s *Store) wrap(op string, err error) error {
	return s.wrapNamed(op, "", err)
}

// wrapNamed is wrap for a statement writing the record called name: a
// unique violation becomes a ConflictError naming the record's kind (from
// the violated table) and name.
func (s *Store) wrapNamed(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	switch s.d.classify(err) {
	case errUnique:
		return &ConflictError{Kind: tableKind(s.d.table(err)), Name: name, err: err}
	case errForeignKey:
		return fmt.Errorf("%s: %w: it refers to a record that does not exist, or is still referred to", op, ErrConflict)
	case errCheck:
		return fmt.Errorf("%s: %w: a value is missing or out of range", op, ErrInvalid)
	}
	return fmt.Errorf("configdb: %s: %w", op, err)
}

// sqliteConstraintTable returns the table a SQLite constraint message names
// ("constraint failed: UNIQUE constraint failed: jobs.name (2067)" → "jobs").
func sqliteConstraintTable(msg string) string {
	const marker = "constraint failed: "
	i := strings.LastIndex(msg, marker)
	if i < 0 {
		return ""
	}
	table, _, _ := strings.Cut(msg[i+len(marker):], ".")
	return strings.TrimSpace(table)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
