package instant

import "github.com/holdfast-backup/holdfast/internal/sessionid"

// Session IDs have one shape wherever a session runs: "ir-" and eight
// (up to sixteen) lower-case hex digits. A session this host starts on its
// own gets a random one (NewID); a session the server runs on a mount
// server (a proxy) is named by the server's session number in decimal
// digits, zero-padded to eight (ServerID): session 42 is ir-00000042, on
// the server (instant-recovery list/stop through it) and in the proxy's own
// registry alike.

// ServerID is the ID of the server's Instant VM Recovery session n.
func ServerID(n int64) string { return sessionid.Format("ir-", n) }

// ParseServerID returns the session number a ServerID names; a bare
// session number is accepted too.
func ParseServerID(id string) (int64, bool) { return sessionid.Parse(id, "ir-", ValidID) }
