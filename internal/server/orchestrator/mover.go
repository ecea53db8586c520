package orchestrator

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"log/slog"
	"sync"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// moverPool keeps one opened mover client per repository and password
// (opening the keys runs argon2id, so it is done once) and forks a client
// with its own session per VM.
type moverPool struct {
	ca   *pki.CA
	cert tls.Certificate
	log  *slog.Logger

	mu      sync.Mutex
	clients map[[32]byte]*mover.Client
}

func newMoverPool(ca *pki.CA, cert tls.Certificate, log *slog.Logger) *moverPool {
	return &moverPool{ca: ca, cert: cert, log: log, clients: map[[32]byte]*mover.Client{}}
}

// session returns a client of its own for one shared session on the
// repository agent name at url.
func (p *moverPool) session(ctx context.Context, name, url, password string) (*mover.Client, error) {
	key := sha256.Sum256([]byte(name + "\x00" + url + "\x00" + password))
	p.mu.Lock()
	base := p.clients[key]
	p.mu.Unlock()
	if base == nil {
		tc := p.ca.ClientTLSConfig(&p.cert, pki.RoleRepository, name)
		c, err := mover.Dial(ctx, mover.ClientOptions{URL: url, Repo: name, Password: []byte(password),
			HTTP: mover.NewHTTPClient(tc), Shared: true, Logger: p.log})
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		if other := p.clients[key]; other != nil {
			c.Close()
			c = other
		} else {
			p.clients[key] = c
		}
		base = c
		p.mu.Unlock()
	}
	return base.Fork(), nil
}

func (p *moverPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, c := range p.clients {
		c.Close()
		delete(p.clients, k)
	}
}
