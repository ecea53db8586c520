package orchestrator

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strings"

	"github.com/holdfast-backup/holdfast/internal/mover"
	"github.com/holdfast-backup/holdfast/internal/server/pki"
	"github.com/holdfast-backup/holdfast/internal/throttle"
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
	return p.shaped(ctx, name, url, password, nil)
}

// shaped is session with traffic rules (internal/throttle grammar, one
// per entry) on the client's connections: one client, and one shaper, per
// repository, password and rules.
func (p *moverPool) shaped(ctx context.Context, name, url, password string, rules []string) (*mover.Client, error) {
	joined := strings.Join(rules, "\n")
	key := sha256.Sum256([]byte(name + "\x00" + url + "\x00" + password + "\x00" + joined))
	return p.pool.Fork(ctx, hex.EncodeToString(key[:]), func(ctx context.Context) (*mover.Client, error) {
		var wrap func(net.Conn) net.Conn
		if joined != "" {
			rs, err := throttle.ParseRules(joined, nil)
			if err != nil {
				return nil, fmt.Errorf("traffic rules: %w", err)
			}
			shaper := throttle.NewShaper(rs, nil)
			wrap = func(c net.Conn) net.Conn { return shaper.Conn(c) }
		}
		tc := p.ca.ClientTLSConfig(&p.cert, pki.RoleRepository, name)
		return mover.Dial(ctx, mover.ClientOptions{URL: url, Repo: name, Password: []byte(password),
			HTTP: mover.NewHTTPClientWrapped(tc, wrap), Shared: true, Logger: p.log})
	})
}

func (p *moverPool) close() { p.pool.Close() }
