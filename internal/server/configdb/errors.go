package configdb

import (
	"database/sql"
	"errors"
	"fmt"
)

// Errors callers branch on; both backends map to them.
var (
	ErrNotFound     = errors.New("configdb: not found")
	ErrConflict     = errors.New("configdb: conflict")
	ErrUnauthorized = errors.New("configdb: unauthorized")
	ErrInvalid      = errors.New("configdb: invalid argument")
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

// wrap turns a driver error from operation op into one of the package errors
// where one applies, keeping the driver's message.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	switch s.d.classify(err) {
	case errUnique:
		return fmt.Errorf("%s: %w: already exists (%v)", op, ErrConflict, err)
	case errForeignKey:
		return fmt.Errorf("%s: %w: still referenced or reference missing (%v)", op, ErrConflict, err)
	case errCheck:
		return fmt.Errorf("%s: %w (%v)", op, ErrInvalid, err)
	}
	return fmt.Errorf("configdb: %s: %w", op, err)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
