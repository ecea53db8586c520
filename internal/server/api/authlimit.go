package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
)

// AuthFailureLimit throttles failed token authentication (API bearer
// tokens, agent join tokens) per client address: a token bucket of Burst
// failures per source, refilled by one every Refill. A source whose bucket
// is empty gets 429 with Retry-After for every request that needs a token,
// before its token is even looked at; other sources are not affected.
// Agent endpoints (client certificates, which cannot be guessed) are not
// throttled. A source is an IPv4 address
// or an IPv6 /64 (one host's usual share). The zero value means 10
// failures, then one more per second.
type AuthFailureLimit struct {
	Burst  int
	Refill time.Duration
}

// maxFailureSources bounds the sources remembered at once.
const maxFailureSources = 1 << 16

// failLimiter implements AuthFailureLimit. It is safe for concurrent use.
type failLimiter struct {
	burst  float64
	refill time.Duration
	now    func() time.Time

	mu      sync.Mutex
	sources map[netip.Prefix]*failBucket
}

type failBucket struct {
	tokens float64 // failures still allowed
	last   time.Time
}

func newFailLimiter(l AuthFailureLimit, now func() time.Time) *failLimiter {
	if l.Burst <= 0 {
		l.Burst = 10
	}
	if l.Refill <= 0 {
		l.Refill = time.Second
	}
	return &failLimiter{burst: float64(l.Burst), refill: l.Refill, now: now, sources: map[netip.Prefix]*failBucket{}}
}

// source is the key of r's client address.
func source(r *http.Request) netip.Prefix {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// refreshed returns b's tokens now (l.mu held).
func (l *failLimiter) refreshed(b *failBucket, now time.Time) float64 {
	return math.Min(l.burst, b.tokens+float64(now.Sub(b.last))/float64(l.refill))
}

// wait returns how long src must wait before it may try to authenticate
// again; 0: now.
func (l *failLimiter) wait(src netip.Prefix) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.sources[src]
	if b == nil {
		return 0
	}
	tokens := l.refreshed(b, l.now())
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) * float64(l.refill))
}

// fail records a failed authentication from src and reports whether src
// is now blocked.
func (l *failLimiter) fail(src netip.Prefix) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.sources[src]
	if b == nil {
		l.makeRoom(now)
		b = &failBucket{tokens: l.burst, last: now}
		l.sources[src] = b
	}
	b.tokens, b.last = math.Max(0, l.refreshed(b, now)-1), now
	return b.tokens < 1
}

// makeRoom forgets sources whose buckets are full again, and if none is,
// an arbitrary one, when the table is full (l.mu held).
func (l *failLimiter) makeRoom(now time.Time) {
	if len(l.sources) < maxFailureSources {
		return
	}
	for k, b := range l.sources {
		if l.refreshed(b, now) >= l.burst {
			delete(l.sources, k)
		}
	}
	for k := range l.sources {
		if len(l.sources) < maxFailureSources {
			return
		}
		delete(l.sources, k)
	}
}

// errTooManyFailures is the answer to a source that failed too often.
func errTooManyFailures() error {
	return &apitypes.Error{Status: http.StatusTooManyRequests, Code: "too_many_failures",
		Message: "too many failed authentications from this address; retry later"}
}

// retryAfter is the Retry-After value for d: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
