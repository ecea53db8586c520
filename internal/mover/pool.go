package mover

import (
	"context"
	"sync"
)

// Pool keeps one opened Client per key (opening the keys runs argon2id, so
// it is done once per repository and password) and hands out forks, each
// with a session of its own. It is safe for concurrent use.
type Pool struct {
	mu      sync.Mutex
	clients map[string]*Client
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{clients: map[string]*Client{}} }

// Fork returns a fork of the client opened for key, dialing it with dial
// the first time. Keys name everything the client depends on (agent URL,
// repository, password, transport settings); hash secrets into them.
func (p *Pool) Fork(ctx context.Context, key string, dial func(context.Context) (*Client, error)) (*Client, error) {
	p.mu.Lock()
	base := p.clients[key]
	p.mu.Unlock()
	if base == nil {
		c, err := dial(ctx)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		if other := p.clients[key]; other != nil {
			c.Close() // a concurrent caller opened it first
			c = other
		} else {
			p.clients[key] = c
		}
		base = c
		p.mu.Unlock()
	}
	return base.Fork(), nil
}

// Close closes every opened client; forks in use must be done.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.clients {
		c.Close()
		delete(p.clients, k)
	}
}
