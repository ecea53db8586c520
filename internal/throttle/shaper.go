package throttle

import (
	"net/netip"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
)

// DefaultRecheck is how often (in clock time) wrapped connections
// re-evaluate which rule applies to them.
const DefaultRecheck = time.Second

// Shaper applies a rule set to connections. It keeps one Bucket per rule
// name, so all connections matching the same rule share its bandwidth.
// It is safe for concurrent use.
type Shaper struct {
	clock   clock.Clock
	recheck time.Duration

	mu      sync.Mutex
	rules   Rules
	buckets map[string]*Bucket
}

// NewShaper returns a Shaper for rules; a nil clock means the real one.
func NewShaper(rules Rules, clk clock.Clock) *Shaper {
	return &Shaper{clock: clock.Or(clk), recheck: DefaultRecheck, rules: rules,
		buckets: map[string]*Bucket{}}
}

// SetRules replaces the rule set at runtime. Buckets of rules that keep
// their name take the new rate at once; buckets of removed rules are
// dropped. Wrappers pick up other changes at their next re-evaluation.
func (s *Shaper) SetRules(rules Rules) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = rules
	kept := make(map[string]*Bucket, len(s.buckets))
	for _, r := range rules {
		if b, ok := s.buckets[r.Name]; ok {
			b.SetRate(r.Rate)
			kept[r.Name] = b
		}
	}
	s.buckets = kept
}

// Lookup returns the shared bucket and rule name for traffic from src to
// dst now, or nil and "" if no rule limits it.
func (s *Shaper) Lookup(src, dst netip.Addr) (*Bucket, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rate, name := s.rules.Match(src, dst, s.clock.Now())
	if rate <= 0 {
		return nil, ""
	}
	b, ok := s.buckets[name]
	if !ok {
		b = NewBucket(rate, 0, s.clock)
		s.buckets[name] = b
	}
	return b, name
}
