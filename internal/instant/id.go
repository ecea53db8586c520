package instant

import (
	"fmt"
	"strconv"
	"strings"
)

// Session IDs have one shape wherever a session runs: "ir-" and eight
// (up to sixteen) lower-case hex digits. A session this host starts on its
// own gets a random one (NewID); a session the server runs on a mount
// server (a proxy) is named by the server's session number in decimal
// digits, zero-padded to eight (ServerID): session 42 is ir-00000042, on
// the server (instant-recovery list/stop through it) and in the proxy's own
// registry alike.

// ServerID is the ID of the server's Instant VM Recovery session n.
func ServerID(n int64) string { return fmt.Sprintf("ir-%08d", n) }

// ParseServerID returns the session number a ServerID names; a bare
// session number is accepted too.
func ParseServerID(id string) (int64, bool) {
	digits := strings.TrimPrefix(id, "ir-")
	if digits != id && !ValidID(id) {
		return 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
