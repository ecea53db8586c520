package guest

import (
	"errors"
	"fmt"
)

var (
	// ErrTimeout is wrapped by the error of a script that ran out of time;
	// its processes were killed.
	ErrTimeout = errors.New("timed out")
	// ErrHostKeyMismatch is wrapped by *HostKeyError.
	ErrHostKeyMismatch = errors.New("ssh host key mismatch")
	// ErrUnreachable means no configured path to the guest worked: SSH had
	// no network path and the guest agent was not configured or did not
	// answer.
	ErrUnreachable = errors.New("guest unreachable")
	// ErrNoPath means the Target has neither SSH nor a guest agent socket.
	ErrNoPath = errors.New("no path to the guest configured")
)

// ScriptError is a script that ran and failed: non-zero exit or killed by
// a signal.
type ScriptError struct {
	Name     string
	Via      string
	ExitCode int    // -1 when killed by a signal
	Signal   string // e.g. "KILL" or "9", when killed by a signal
	Output   string // as Result.Output
}

func (e *ScriptError) Error() string {
	if e.Signal != "" {
		return fmt.Sprintf("guest script %q killed by signal %s (via %s)", e.Name, e.Signal, e.Via)
	}
	return fmt.Sprintf("guest script %q exited with code %d (via %s)", e.Name, e.ExitCode, e.Via)
}

// HostKeyError is a guest whose SSH host key is not the pinned one. It is
// never a reason to fall back to the guest agent.
type HostKeyError struct {
	Addr string
	Want string // pinned fingerprint
	Got  string // presented fingerprint
}

func (e *HostKeyError) Error() string {
	return fmt.Sprintf("ssh %s: host key %s does not match the pinned %s (possible man-in-the-middle)", e.Addr, e.Got, e.Want)
}

func (e *HostKeyError) Unwrap() error { return ErrHostKeyMismatch }

// noPathError marks a failure that means the path is absent (connection
// refused, unreachable, socket missing), after which Run may try the next
// path.
type noPathError struct{ err error }

func (e *noPathError) Error() string { return e.err.Error() }
func (e *noPathError) Unwrap() error { return e.err }

func isNoPath(err error) bool {
	var np *noPathError
	return errors.As(err, &np)
}
