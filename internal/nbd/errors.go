package nbd

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrProtocol marks a violation of the NBD protocol by the peer.
	ErrProtocol = errors.New("nbd: protocol error")
	// ErrClosed is returned for requests on a closed client.
	ErrClosed = errors.New("nbd: client closed")
	// ErrTLSRequired is matched by option errors where the server demands TLS.
	ErrTLSRequired = errors.New("nbd: server requires TLS")
	// ErrUnknownExport is matched when the server does not know the export.
	ErrUnknownExport = errors.New("nbd: unknown export")
	// ErrServerClosed is returned by Serve after Shutdown.
	ErrServerClosed = errors.New("nbd: server closed")
)

// NBD error values carried in replies.
const (
	codeEPERM     uint32 = 1
	codeEIO       uint32 = 5
	codeENOMEM    uint32 = 12
	codeEINVAL    uint32 = 22
	codeENOSPC    uint32 = 28
	codeEOVERFLOW uint32 = 75
	codeENOTSUP   uint32 = 95
	codeESHUTDOWN uint32 = 108
)

func protoErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrProtocol}, args...)...)
}

// Error is an error reply to a transmission request. It unwraps to the
// matching syscall.Errno, so errors.Is(err, syscall.ENOSPC) works.
type Error struct {
	Op      string // command name, e.g. "NBD_CMD_READ"
	Code    uint32 // NBD error value as sent by the server
	Message string // optional human-readable text from the server
	Offset  int64  // offset reported by NBD_REPLY_TYPE_ERROR_OFFSET, else -1
}

func (e *Error) Error() string {
	s := fmt.Sprintf("nbd: %s failed: %v", e.Op, e.Errno())
	if e.Offset >= 0 {
		s += fmt.Sprintf(" at offset %d", e.Offset)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Errno maps the NBD error value to a syscall.Errno.
func (e *Error) Errno() syscall.Errno {
	switch e.Code {
	case codeEPERM:
		return syscall.EPERM
	case codeEIO:
		return syscall.EIO
	case codeENOMEM:
		return syscall.ENOMEM
	case codeEINVAL:
		return syscall.EINVAL
	case codeENOSPC:
		return syscall.ENOSPC
	case codeEOVERFLOW:
		return syscall.EOVERFLOW
	case codeENOTSUP:
		return syscall.ENOTSUP
	case codeESHUTDOWN:
		return syscall.ESHUTDOWN
	}
	return syscall.EIO
}

// Unwrap returns the syscall.Errno.
func (e *Error) Unwrap() error { return e.Errno() }

func newReplyError(cmd uint16, code uint32, msg string) *Error {
	return &Error{Op: cmdName(cmd), Code: code, Message: msg, Offset: -1}
}

// OptionError is an error reply to a handshake option.
type OptionError struct {
	Option  string // e.g. "NBD_OPT_GO"
	Reply   uint32 // NBD_REP_ERR_* value
	Message string
}

func (e *OptionError) Error() string {
	s := fmt.Sprintf("nbd: server refused %s: %s", e.Option, repName(e.Reply))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is matches ErrTLSRequired, ErrUnknownExport and errors.ErrUnsupported.
func (e *OptionError) Is(target error) bool {
	switch target {
	case ErrTLSRequired:
		return e.Reply == repErrTLSReqd
	case ErrUnknownExport:
		return e.Reply == repErrUnknown
	case errors.ErrUnsupported:
		return e.Reply == repErrUnsup
	}
	return false
}

// errorCode maps a Go error from an export's backend to an NBD error value.
func errorCode(err error) uint32 {
	var ne *Error
	if errors.As(err, &ne) {
		return ne.Code
	}
	table := []struct {
		code uint32
		errs []error
	}{
		{codeEPERM, []error{syscall.EPERM, syscall.EACCES, syscall.EROFS, fs.ErrPermission}},
		{codeENOSPC, []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG}},
		{codeEINVAL, []error{syscall.EINVAL, fs.ErrInvalid}},
		{codeENOMEM, []error{syscall.ENOMEM}},
		{codeEOVERFLOW, []error{syscall.EOVERFLOW}},
		{codeENOTSUP, []error{syscall.ENOTSUP, errors.ErrUnsupported}},
		{codeESHUTDOWN, []error{syscall.ESHUTDOWN}},
	}
	for _, row := range table {
		for _, e := range row.errs {
			if errors.Is(err, e) {
				return row.code
			}
		}
	}
	return codeEIO
}
