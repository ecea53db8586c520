package orchestrator

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/scheduler"
)

// A proxy announces what it can read in its heartbeat's capabilities:
//
//	{"transports": ["direct", "nbd"], "reach": ["/images/", "nbd://10.0.0.5"]}
//
// transports defaults to all; reach lists prefixes of the disks it can
// read (image paths, or nbd:// URLs cut after the host), and an empty
// reach means every disk. The scheduler gets, per proxy, the transports
// for each source of a live task whose key starts with one of the
// prefixes.

// proxyCaps is a proxy's announced capabilities.
type proxyCaps struct {
	Transports []string `json:"transports"`
	Reach      []string `json:"reach"`
	NoMount    bool     `json:"no_mount"` // does not serve Instant VM Recovery sessions
}

func parseCaps(raw json.RawMessage) proxyCaps {
	var c proxyCaps
	_ = json.Unmarshal(raw, &c)
	if len(c.Transports) == 0 {
		c.Transports = allTransports
	}
	return c
}

// sourceKey names the source a disk is read from, for reach matching: a
// cleaned absolute path, or an NBD URL's scheme and host.
func sourceKey(disk string) string {
	if i := strings.Index(disk, "://"); i > 0 {
		if u, err := url.Parse(disk); err == nil {
			if u.Host != "" {
				return u.Scheme + "://" + u.Host
			}
			// nbd+unix:///export?socket=PATH: the socket names the source
			if sock := u.Query().Get("socket"); sock != "" {
				return u.Scheme + "://" + filepath.Clean(sock)
			}
		}
		return disk
	}
	return filepath.Clean(disk)
}

// reachMap is the scheduler's view of a proxy for the given live sources.
func (c proxyCaps) reachMap(sources []string) map[string][]string {
	m := map[string][]string{}
	if !c.NoMount {
		m[mountSource] = allTransports
	} else {
		m[mountSource] = nil // listed without transports: never a mount server
	}
	if len(c.Reach) == 0 {
		m[scheduler.AnySource] = c.Transports
		return m
	}
	for _, s := range sources {
		for _, p := range c.Reach {
			if p != "" && strings.HasPrefix(s, p) {
				m[s] = c.Transports
				break
			}
		}
	}
	return m
}

// liveSourcesLocked lists the source keys of the tasks being run.
func (or *Orchestrator) liveSourcesLocked() []string {
	seen := map[string]bool{}
	var out []string
	for _, tr := range or.tasks {
		src := tr.source
		if src == "" {
			src = tr.target // a restore: the proxy must reach where it writes
		}
		if src == "" {
			continue
		}
		k := sourceKey(src)
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// diskTransports returns the transports a disk may be read with under the
// job's preference ("" or auto: whatever fits the disk).
func diskTransports(disk, preference string) []string {
	fit := transportsFor(disk)
	if preference == "" || preference == "auto" {
		return fit
	}
	if slices.Contains(fit, preference) {
		return []string{preference}
	}
	return nil
}
