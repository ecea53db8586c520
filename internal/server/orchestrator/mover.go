package orchestrator

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"log/slog"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
)

// moverPool opens the server's clients of repository agents (its own
// certificate) once per repository and password, and forks one per VM
// session.
type moverPool struct {
	ca   *pki.CA
	cert tls.Certificate
	log  *slog.Logger
	pool *mover.Pool
}

func newMoverPool(ca *pki.CA, cert tls.Certificate, log *slog.Logger) *moverPool {
	return &moverPool{ca: ca, cert: cert, log: log, pool: mover.NewPool()}
}

// session returns a client of its own for one shared session on the
// repository agent name at url.
func (p *moverPool) session(ctx context.Context, name, url, password string) (*mover.Client, error) {
	key := sha256.Sum256([]byte(name + "\x00" + url + "\x00" + password))
	return p.pool.Fork(ctx, hex.EncodeToString(key[:]), func(ctx context.Context) (*mover.Client, error) {
		tc := p.ca.ClientTLSConfig(&p.cert, pki.RoleRepository, name)
		return mover.Dial(ctx, mover.ClientOptions{URL: url, Repo: name, Password: []byte(password),
			HTTP: mover.NewHTTPClient(tc), Shared: true, Logger: p.log})
	})
}

func (p *moverPool) close() { p.pool.Close() }
