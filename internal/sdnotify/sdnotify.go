package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// States a service reports.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// ErrUnsupported is a $NOTIFY_SOCKET this package cannot reach (vsock).
var ErrUnsupported = errors.New("sdnotify: unsupported NOTIFY_SOCKET")

// Notify sends state (newline-separated VAR=VALUE assignments, e.g. Ready)
// to the socket $NOTIFY_SOCKET names, read through getenv. It reports
// whether a notification was sent: false with a nil error when
// $NOTIFY_SOCKET is unset.
func Notify(getenv func(string) string, state string) (bool, error) {
	path := getenv("NOTIFY_SOCKET")
	switch {
	case path == "":
		return false, nil
	case strings.HasPrefix(path, "vsock:"):
		return false, fmt.Errorf("%w: %s", ErrUnsupported, path)
	case strings.HasPrefix(path, "@"):
		path = "\x00" + path[1:]
	case !strings.HasPrefix(path, "/"):
		return false, fmt.Errorf("%w: %q is not an absolute path or abstract socket", ErrUnsupported, path)
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	return true, nil
}
