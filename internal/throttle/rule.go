package throttle

import (
	"net/netip"
	"time"
)

// Rule limits traffic from any of Source to any of Target to Rate bytes
// per second while one of Windows is active. Empty Source or Target means
// any address; no Windows means always.
type Rule struct {
	Name    string
	Source  []netip.Prefix
	Target  []netip.Prefix
	Rate    int64
	Windows []Window
}

// Rules is an ordered rule set.
type Rules []Rule

// Applies reports whether r limits traffic from src to dst at time t.
// A rule with Rate <= 0 never applies (it imposes no limit).
func (r *Rule) Applies(src, dst netip.Addr, t time.Time) bool {
	return r.Rate > 0 && containsAddr(r.Source, src) &&
		containsAddr(r.Target, dst) && r.ActiveAt(t)
}

// ActiveAt reports whether one of the rule's windows is active at t
// (always true without windows).
func (r *Rule) ActiveAt(t time.Time) bool {
	if len(r.Windows) == 0 {
		return true
	}
	for _, w := range r.Windows {
		if w.Active(t) {
			return true
		}
	}
	return false
}

// containsAddr reports whether a prefix of ps contains a (IPv4-mapped IPv6
// addresses are compared as IPv4); an empty list contains every address.
func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	if len(ps) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Match returns the rate and name of the most restrictive (lowest-rate)
// rule that applies to traffic from src to dst at time t; on ties the
// earlier rule wins. It returns 0 and "" (unlimited) if none applies.
func (rs Rules) Match(src, dst netip.Addr, t time.Time) (rate int64, rule string) {
	for i := range rs {
		r := &rs[i]
		if r.Applies(src, dst, t) && (rate == 0 || r.Rate < rate) {
			rate, rule = r.Rate, r.Name
		}
	}
	return rate, rule
}
