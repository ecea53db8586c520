package scheduler

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// DefaultTransports returns the preference order used for a task that lists
// none: direct, hotadd, nbd.
func DefaultTransports() []source.Transport {
	return []source.Transport{source.TransportDirect, source.TransportHotAdd, source.TransportNBD}
}

// AnySource is the Proxy.Reach key for sources not listed by name.
const AnySource = "*"

// Proxy is a source-side data mover.
type Proxy struct {
	ID string
	// Slots is the number of tasks the proxy runs at once; zero or less
	// means runtime.NumCPU() (a remote agent should pass its own core
	// count).
	Slots int
	// Reach maps a source ID (a host, datastore or cluster) to the
	// transports the proxy can read it with; the AnySource key applies to
	// sources not listed. A source with no entry is unreachable.
	Reach map[string][]source.Transport
}

// Repository is a target-side data mover.
type Repository struct {
	ID string
	// Slots is the number of tasks the repository accepts at once; zero or
	// less means runtime.NumCPU().
	Slots int
}

// Errors returned by the resource scheduler.
var (
	ErrUnknownProxy = errors.New("scheduler: unknown proxy")
	ErrProxyDown    = errors.New("scheduler: proxy went offline")
	ErrStale        = errors.New("scheduler: attempt is no longer running")
)

type proxyState struct {
	cfg     Proxy
	used    int
	offline bool // heartbeat lost (ProxyDown)
	removed bool // RemoveProxy: no new tasks, deleted when idle
}

type repoState struct {
	cfg  Repository
	used int
}

func slotsOrCPUs(n int) int {
	if n > 0 {
		return n
	}
	return runtime.NumCPU()
}

// usable reports whether the proxy may take new tasks.
func (p *proxyState) usable() bool { return !p.offline && !p.removed }

// offers reports whether the proxy reads source with transport.
func (p *proxyState) offers(src string, transport source.Transport) bool {
	tr, ok := p.cfg.Reach[src]
	if !ok {
		tr = p.cfg.Reach[AnySource]
	}
	return slices.Contains(tr, transport)
}

// AddProxy registers a proxy, or updates one with the same ID and brings it
// back online. Running tasks keep their slots when Slots shrinks.
func (s *Scheduler) AddProxy(p Proxy) error {
	if p.ID == "" {
		return errors.New("scheduler: proxy without ID")
	}
	p.Slots = slotsOrCPUs(p.Slots)
	reach := make(map[string][]source.Transport, len(p.Reach))
	for src, tr := range p.Reach {
		reach[src] = slices.Clone(tr)
	}
	p.Reach = reach
	s.mu.Lock()
	defer s.mu.Unlock()
	if ps := s.proxies[p.ID]; ps != nil {
		ps.cfg, ps.offline, ps.removed = p, false, false
	} else {
		s.proxies[p.ID] = &proxyState{cfg: p}
	}
	s.wakeLocked()
	return nil
}

// RemoveProxy stops assigning tasks to a proxy; tasks running on it finish
// normally and the proxy is forgotten when the last one ends.
func (s *Scheduler) RemoveProxy(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proxies[id]
	if p == nil || p.removed {
		return fmt.Errorf("%w %q", ErrUnknownProxy, id)
	}
	p.removed = true
	s.dropIdleProxyLocked(p)
	return nil
}

// ProxyUp brings a proxy marked offline by ProxyDown back online.
func (s *Scheduler) ProxyUp(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proxies[id]
	if p == nil || p.removed {
		return fmt.Errorf("%w %q", ErrUnknownProxy, id)
	}
	p.offline = false
	s.wakeLocked()
	return nil
}

// ProxyDown marks a proxy offline (its heartbeat was lost). The attempts
// running on it end at once with ErrProxyDown and give back their slots;
// with requeue their tasks go back to their old place in the queue (and
// run on other proxies), otherwise the tasks end. It returns the affected
// task IDs, sorted. Done for a lost attempt returns ErrStale.
func (s *Scheduler) ProxyDown(id string, requeue bool) ([]string, error) {
	s.mu.Lock()
	p := s.proxies[id]
	if p == nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w %q", ErrUnknownProxy, id)
	}
	p.offline = true
	var ids []string
	for tid, ts := range s.tasks {
		if ts.state != stateQueued && ts.proxy == id {
			ids = append(ids, tid)
		}
	}
	sort.Strings(ids)
	var releases []func()
	for _, tid := range ids {
		ts := s.tasks[tid]
		s.endAttemptLocked(ts, ErrProxyDown)
		if requeue {
			s.enqueueLocked(ts)
		} else {
			releases = append(releases, s.finishLocked(ts))
		}
	}
	s.wakeLocked()
	s.mu.Unlock()
	for _, release := range releases {
		release()
	}
	return ids, nil
}

// AddRepository registers a repository or updates one with the same ID.
func (s *Scheduler) AddRepository(r Repository) error {
	if r.ID == "" {
		return errors.New("scheduler: repository without ID")
	}
	r.Slots = slotsOrCPUs(r.Slots)
	s.mu.Lock()
	defer s.mu.Unlock()
	if rs := s.repos[r.ID]; rs != nil {
		rs.cfg = r
	} else {
		s.repos[r.ID] = &repoState{cfg: r}
	}
	s.wakeLocked()
	return nil
}

func (s *Scheduler) dropIdleProxyLocked(p *proxyState) {
	if p.removed && p.used == 0 && s.proxies[p.cfg.ID] == p {
		delete(s.proxies, p.cfg.ID)
	}
}
