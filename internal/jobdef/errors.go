package jobdef

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every error that refuses a job.
var ErrInvalid = errors.New("invalid job")

// FieldError is a fault of one field of a job: Field is its path, e.g.
// "definition.vms[1].disks" or "schedule".
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

// Unwrap returns ErrInvalid and the cause.
func (e *FieldError) Unwrap() []error { return []error{ErrInvalid, e.Err} }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

func wrapField(field string, err error) error {
	return &FieldError{Field: field, Err: err}
}
