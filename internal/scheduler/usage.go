package scheduler

import "sort"

// Usage is how many of an agent's task slots are taken, for the server's
// metrics.
type Usage struct {
	Role    string // "proxy" or "repository"
	ID      string
	Slots   int
	Busy    int
	Offline bool // a proxy whose heartbeat was lost
}

// Usage returns the slot use of every proxy and repository, by role and ID.
func (s *Scheduler) Usage() []Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Usage, 0, len(s.proxies)+len(s.repos))
	for id, p := range s.proxies {
		out = append(out, Usage{Role: "proxy", ID: id, Slots: p.cfg.Slots, Busy: p.used, Offline: p.offline})
	}
	for id, r := range s.repos {
		out = append(out, Usage{Role: "repository", ID: id, Slots: r.cfg.Slots, Busy: r.used})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Role != out[j].Role {
			return out[i].Role < out[j].Role
		}
		return out[i].ID < out[j].ID
	})
	return out
}
