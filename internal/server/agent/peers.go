package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/holdfast-backup/holdfast/internal/clock"
	"github.com/holdfast-backup/holdfast/internal/server/apitypes"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// Peer is a certificate the server vouches for: its holder's role and name
// and its fingerprint (pki.Fingerprint). The server's own entry has no name.
// It is the heartbeat reply's apitypes.Peer.
type Peer = apitypes.Peer

// ErrNotVouched is wrapped when a client certificate, although signed by
// the server's CA, is not one the server currently vouches for: its agent
// was deleted or re-joined since (revoked), or the server never handed it
// out as an agent's current certificate.
var ErrNotVouched = errors.New("certificate not valid on the server (revoked, superseded by a re-join, or unknown)")

// PeerSetOptions configure a PeerSet.
type PeerSetOptions struct {
	// Refresh asks the server for the current list now (a heartbeat whose
	// reply reaches Update). Nil: only Update changes the set.
	Refresh func(ctx context.Context) error
	// MinRefresh is the least time between two refreshes caused by
	// unknown certificates, so that a revoked client cannot make the agent
	// call the server for every request; 0 means 1 s.
	MinRefresh time.Duration
	// OnUpdate, if set, runs after every Update with the new set's test,
	// for example to end the sessions of revoked certificates.
	OnUpdate func(valid func(fingerprint string) bool)
	Clock    clock.Clock // nil: the real clock
}

// PeerSet is the list of certificates a repository agent accepts: what
// the server last vouched for in a heartbeat reply (Client.OnReply →
// Update). A certificate it does not know makes it ask the server again
// (at most once per MinRefresh) before refusing, so a proxy that joined a
// moment ago, or a restarted server, is accepted at once. Until the first
// answer it knows nobody: it fails closed. It is safe for concurrent use.
type PeerSet struct {
	o PeerSetOptions

	refreshMu sync.Mutex // one refresh at a time

	mu    sync.Mutex
	peers map[string]Peer // by fingerprint
	gen   int             // refreshes tried
	tried time.Time       // last refresh tried
}

// NewPeerSet returns an empty set.
func NewPeerSet(o PeerSetOptions) *PeerSet {
	if o.MinRefresh <= 0 {
		o.MinRefresh = time.Second
	}
	o.Clock = clock.Or(o.Clock)
	return &PeerSet{o: o, peers: map[string]Peer{}}
}

// Update replaces the set with peers.
func (p *PeerSet) Update(peers []Peer) {
	m := make(map[string]Peer, len(peers))
	for _, pe := range peers {
		m[pe.Fingerprint] = pe
	}
	p.mu.Lock()
	p.peers = m
	p.mu.Unlock()
	if p.o.OnUpdate != nil {
		p.o.OnUpdate(p.Valid)
	}
}

// Valid reports whether the server vouches for the certificate with
// fingerprint.
func (p *PeerSet) Valid(fingerprint string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.peers[fingerprint]
	return ok
}

// lookup finds the certificate fp of role.
func (p *PeerSet) lookup(fp, role string) (Peer, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pe, ok := p.peers[fp]
	return pe, ok && pe.Role == role
}

// Check returns the peer of a connection whose client certificate the
// handshake verified against the server's CA, if the server vouches for
// that very certificate; otherwise an error wrapping ErrNotVouched (or
// pki.ErrNoPeerCertificate, pki.ErrBadIdentity).
func (p *PeerSet) Check(ctx context.Context, cs *tls.ConnectionState) (Peer, error) {
	role, name, err := pki.PeerIdentity(cs)
	if err != nil {
		return Peer{}, err
	}
	fp := pki.Fingerprint(cs.VerifiedChains[0][0])
	if pe, ok := p.lookup(fp, role); ok {
		return pe, nil
	}
	rerr := p.refresh(ctx)
	if pe, ok := p.lookup(fp, role); ok {
		return pe, nil
	}
	err = fmt.Errorf("%s %q, certificate %.23s…: %w", role, name, fp, ErrNotVouched)
	if rerr != nil {
		err = fmt.Errorf("%w (asking the server failed: %v)", err, rerr)
	}
	return Peer{}, err
}

// refresh asks the server for the list unless another refresh ran since
// the call began or one ran less than MinRefresh ago.
func (p *PeerSet) refresh(ctx context.Context) error {
	if p.o.Refresh == nil {
		return nil
	}
	p.mu.Lock()
	gen := p.gen
	p.mu.Unlock()
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	p.mu.Lock()
	now := p.o.Clock.Now()
	if p.gen != gen || (!p.tried.IsZero() && now.Sub(p.tried) < p.o.MinRefresh) {
		p.mu.Unlock()
		return nil
	}
	p.gen++
	p.tried = now
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return p.o.Refresh(ctx)
}
