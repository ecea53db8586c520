package orchestrator

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/scheduler"
	"github.com/holdfast-backup/holdfast/internal/source"
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
//
// vSphere VMs (keys vsphere://host:port) go by "vsphere_transports" too:
// the ways the proxy reads vSphere disks (direct with --datastore-path,
// hotadd with --vsphere-vm, nbd always); a proxy that announces none reads
// them over the network only.
//
// Restores go by "restore_roots" and "restore_devices" instead (the
// proxy's --restore-root and --restore-device): a restore target is
// offered only to proxies with a root above it or that device, never by
// reach. The proxy checks the target itself again when it writes
// (pipeline.Confinement); this only keeps restores away from proxies that
// would refuse them.

// proxyCaps is a proxy's announced capabilities.
type proxyCaps struct {
	Transports []source.Transport `json:"transports"`
	Reach      []string           `json:"reach"`
	NoMount    bool               `json:"no_mount"` // does not serve Instant VM Recovery sessions
	// RestoreRoots and RestoreDevices are where the proxy writes restores.
	RestoreRoots   []string `json:"restore_roots"`
	RestoreDevices []string `json:"restore_devices"`
	// VSphere are the transports it reads vSphere disks with.
	VSphere []source.Transport `json:"vsphere_transports"`
}

// vspherePrefix starts the source key of a vSphere VM.
const vspherePrefix = string(source.KindVSphere) + "://"

// transportsFor are the transports the proxy offers for the source key s.
func (c proxyCaps) transportsFor(s string) []source.Transport {
	if !strings.HasPrefix(s, vspherePrefix) {
		return c.Transports
	}
	vs := c.VSphere
	if len(vs) == 0 {
		vs = []source.Transport{source.TransportNBD}
	}
	var out []source.Transport
	for _, t := range c.Transports {
		if slices.Contains(vs, t) {
			out = append(out, t)
		}
	}
	return out
}

// restorePrefix marks the source key of a restore target.
const restorePrefix = "restore:"

// restoreKey is the scheduler's source key of a restore target.
func restoreKey(target string) string { return restorePrefix + filepath.Clean(target) }

// restores reports whether the proxy takes restores to path (a cleaned
// absolute path).
func (c proxyCaps) restores(path string) bool {
	for _, d := range c.RestoreDevices {
		if filepath.Clean(d) == path {
			return true
		}
	}
	for _, r := range c.RestoreRoots {
		rel, err := filepath.Rel(filepath.Clean(r), path)
		if err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") {
			return true
		}
	}
	return false
}

func parseCaps(raw json.RawMessage) proxyCaps {
	var c proxyCaps
	_ = json.Unmarshal(raw, &c)
	if len(c.Transports) == 0 {
		c.Transports = source.AllTransports()
	}
	return c
}

// reachMap is the scheduler's view of a proxy for the given live sources.
func (c proxyCaps) reachMap(sources []string) map[string][]source.Transport {
	m := map[string][]source.Transport{}
	if !c.NoMount {
		m[mountSource] = source.AllTransports()
	} else {
		m[mountSource] = nil // listed without transports: never a mount server
	}
	for _, s := range sources {
		if path, ok := strings.CutPrefix(s, restorePrefix); ok {
			m[s] = nil // listed: AnySource does not apply to restores
			if c.restores(path) {
				m[s] = c.Transports
			}
		}
	}
	if len(c.Reach) == 0 {
		m[scheduler.AnySource] = c.Transports
		for _, s := range sources {
			if strings.HasPrefix(s, vspherePrefix) {
				m[s] = c.transportsFor(s)
			}
		}
		return m
	}
	for _, s := range sources {
		if strings.HasPrefix(s, restorePrefix) {
			continue
		}
		for _, p := range c.Reach {
			if p != "" && strings.HasPrefix(s, p) {
				m[s] = c.transportsFor(s)
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
		var k string
		switch {
		case tr.source != "":
			k = tr.reachKey()
		case tr.target != "": // a restore: the proxy must take restores there
			k = restoreKey(tr.target)
		default:
			continue
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
