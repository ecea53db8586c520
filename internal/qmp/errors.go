package qmp

import (
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by calls on a Client or Agent after Close.
	ErrClosed = errors.New("qmp: connection closed")
	// ErrDisconnected wraps the cause when the peer closed the connection or
	// it broke (QEMU exited or was killed). Pending calls fail with it.
	ErrDisconnected = errors.New("qmp: connection lost")
	// ErrProtocol means the peer sent something that is not a QMP message.
	ErrProtocol = errors.New("qmp: protocol error")
	// ErrMessageTooLarge means a single message exceeded MaxMessageSize.
	ErrMessageTooLarge = errors.New("qmp: message too large")
	// ErrEventOverflow means a subscription queued more than
	// maxQueuedEvents events without being read; later events were dropped.
	ErrEventOverflow = errors.New("qmp: too many unread events")
)

// Common values of Error.Class.
const (
	ClassGenericError    = "GenericError"
	ClassCommandNotFound = "CommandNotFound"
	ClassDeviceNotFound  = "DeviceNotFound"
	ClassDeviceNotActive = "DeviceNotActive"
)

// Error is an error reply from QEMU or the guest agent:
// {"error": {"class": ..., "desc": ...}}.
type Error struct {
	Class   string `json:"class"`
	Desc    string `json:"desc"`
	Command string `json:"-"` // the command that failed, set by the client
}

func (e *Error) Error() string {
	if e.Command == "" {
		return fmt.Sprintf("qmp: %s: %s", e.Class, e.Desc)
	}
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// IsClass reports whether err is (or wraps) an *Error of the given class.
func IsClass(err error, class string) bool {
	var e *Error
	return errors.As(err, &e) && e.Class == class
}
