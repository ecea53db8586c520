package scheduler

import (
	"fmt"

	"github.com/holdfast-backup/holdfast/internal/source"
)

// Reason tells why a queued task is waiting.
type Reason int

// Reasons a task waits, in the order they are checked.
const (
	// Runnable: slots are free; the task waits for a worker's Next.
	Runnable Reason = iota
	// RepositoryUnknown: the task's repository is not registered.
	RepositoryUnknown
	// Unreachable: no online proxy reaches the source with any of the
	// task's transports. The task waits until one is added or comes back.
	Unreachable
	// RepositoryBusy: all slots of the task's repository are taken.
	RepositoryBusy
	// ProxiesBusy: proxies reach the source but none has a free slot.
	ProxiesBusy
)

var reasonNames = [...]string{"runnable", "repository unknown", "unreachable", "repository busy", "proxies busy"}

func (r Reason) String() string {
	if r >= 0 && int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// choice is where a runnable task goes.
type choice struct {
	proxy     *proxyState
	repo      *repoState
	transport source.Transport
}

// choose picks proxy, repository and transport for t, or says why it must
// wait.
func (s *Scheduler) choose(t *Task) (choice, Reason, string) {
	repo := s.repos[t.RepositoryID]
	if repo == nil {
		return choice{}, RepositoryUnknown, fmt.Sprintf("repository %q is not registered", t.RepositoryID)
	}
	transports := t.transports()
	proxy, transport, reachable := chooseProxy(s.proxies, t.SourceID, transports)
	switch {
	case !reachable:
		return choice{}, Unreachable, fmt.Sprintf("no proxy can reach %s (none online offers source %q with %s)",
			t.VM, t.SourceID, source.JoinTransports(transports, ", "))
	case repo.used >= repo.cfg.Slots:
		return choice{}, RepositoryBusy, fmt.Sprintf("repository %s is busy (%d/%d slots)",
			repo.cfg.ID, repo.used, repo.cfg.Slots)
	case proxy == nil:
		return choice{}, ProxiesBusy, fmt.Sprintf("the proxies that reach %s are busy (source %q)", t.VM, t.SourceID)
	}
	return choice{proxy: proxy, repo: repo, transport: transport}, Runnable, ""
}

// chooseProxy walks transports in preference order and returns the least
// loaded usable proxy with a free slot for the first transport that has
// one. reachable reports whether any usable proxy offers the source with
// one of the transports, busy or not.
func chooseProxy(proxies map[string]*proxyState, src string, transports []source.Transport) (best *proxyState, transport source.Transport, reachable bool) {
	for _, tr := range transports {
		for _, p := range proxies {
			if !p.usable() || !p.offers(src, tr) {
				continue
			}
			reachable = true
			if p.used < p.cfg.Slots && (best == nil || lessLoaded(p, best)) {
				best = p
			}
		}
		if best != nil {
			return best, tr, true
		}
	}
	return nil, "", reachable
}

// lessLoaded orders proxies by used/slots, then more slots first, then ID,
// so that the choice never depends on map order.
func lessLoaded(a, b *proxyState) bool {
	la, lb := a.used*b.cfg.Slots, b.used*a.cfg.Slots
	if la != lb {
		return la < lb
	}
	if a.cfg.Slots != b.cfg.Slots {
		return a.cfg.Slots > b.cfg.Slots
	}
	return a.cfg.ID < b.cfg.ID
}
